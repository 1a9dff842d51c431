"""Every scenario in one file, for the web UI: `locust -f loadtests/locustfile.py --class-picker`
(`make ui APP=sync|async` does this against a seeded database)."""

from loadtests.interference import Neighbour, Probe
from loadtests.mixed_crud import MixedCrud
from loadtests.read_heavy import ReadHeavy
from loadtests.signup import Signup
from loadtests.slow_db import SlowDb
from loadtests.write_heavy import WriteHeavy

__all__ = ["MixedCrud", "Neighbour", "Probe", "ReadHeavy", "Signup", "SlowDb", "WriteHeavy"]
