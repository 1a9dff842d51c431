"""The interference scenario's parameters, in one place for its locustfile (loadtests/interference.py), the
catalog's descriptions and the report's captions. Constants only: importing this needs no Locust."""

from __future__ import annotations

PROBE = "/users/{id} probe"  # the probes' request name in Locust
PROBE_REQUEST = f"GET {PROBE}"  # ... as recorded (method and name): the report's histogram of the probes
PROBES = 4  # probe users
PROBE_INTERVAL_S = 0.05  # each probe sends one request this often
DEFAULT_MS = {"cpu": 10, "io": 50}  # a neighbour request's work (--neighbour-ms overrides it)
# The neighbour work, in the order the report lists it ("none": the probes alone, the reference).
NEIGHBOURS = {
    "none": "nothing: the probes alone",
    "cpu": f"pure-Python CPU work (GET /cpu?ms={DEFAULT_MS['cpu']}, holds the GIL)",
    "argon2": "Argon2 sign-ups (C code that releases the GIL)",
    "io": f"slow queries (GET /io/sleep?ms={DEFAULT_MS['io']})",
}
KINDS = tuple(NEIGHBOURS)
PROBES_TEXT = f"{PROBES} users sending GET /users/{{id}} every {PROBE_INTERVAL_S * 1000:.0f} ms"
