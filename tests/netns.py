"""Load-generator "hosts" on this machine: network namespaces joined to the root namespace by veth pairs.

Used by tests/test_distributed.py (through a fixture whose finaliser closes the ExitStack) and by
scripts/distributed-vs-local. Every undo step is registered before the step it undoes, so whatever was
made is removed on exit, also after a failure half-way. The addresses come from one /29 of 10.0.0.0/8
that overlaps nothing on this host, and are assigned to the veth ends only: host 1 reaches the master's
address directly, host 2 through a /32 route to it. No namespace has a default route, so nothing sent
from one can reach any other address.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass


class NamespacesRefused(Exception):
    """Network namespaces cannot be made here; the message says why."""


@dataclass(frozen=True)
class Hosts:
    master: str  # the root namespace's end of the first veth pair: the master (and the app) listen here
    namespaces: tuple[str, ...]


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


def pick_subnet() -> ipaddress.IPv4Network:
    """A /29 of 10.0.0.0/8 that no address or route of this host overlaps."""
    used: list[ipaddress.IPv4Network] = []
    for entry in json.loads(ip("-j", "-4", "addr").stdout or "[]"):
        for addr in entry.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    for route in json.loads(ip("-j", "-4", "route").stdout or "[]"):
        if route.get("dst") not in (None, "default"):
            used.append(ipaddress.IPv4Network(route["dst"], strict=False))
    rng = random.Random()
    for _ in range(200):
        net = ipaddress.IPv4Network(
            f"10.{rng.randrange(64, 250)}.{rng.randrange(256)}.{8 * rng.randrange(32)}/29"
        )
        if not any(net.overlaps(u) for u in used):
            return net
    raise NamespacesRefused("no free /29 in 10.0.0.0/8 on this host")


def make_hosts(undo: ExitStack) -> Hosts:
    """Two namespaces as load-generator hosts; `undo.close()` removes them and their veth pairs."""
    if shutil.which("ip") is None:
        raise NamespacesRefused("iproute2's `ip` is not installed: network namespaces cannot be made")
    tag = f"{os.getpid() % 100000}"
    probe = f"bench-probe-{tag}"
    made = ip("netns", "add", probe)
    if made.returncode != 0:
        raise NamespacesRefused(f"creating a network namespace is refused here: {made.stderr.strip()}")
    try:
        entered = ip("netns", "exec", probe, "true")
        if entered.returncode != 0:
            raise NamespacesRefused(
                f"running a process in a network namespace is refused: {entered.stderr.strip()}"
            )
    finally:
        ip("netns", "del", probe)
    net = pick_subnet()
    addr = list(net.hosts())  # .1 .. .6: pair 1 = .1/.2, pair 2 = .5/.6 (two /30s)
    namespaces = []
    for i, (root_ip, ns_ip) in enumerate([(addr[0], addr[1]), (addr[4], addr[5])], 1):
        ns, root_end, ns_end = f"bench-h{i}-{tag}", f"bvr{i}-{tag}", f"bvp{i}-{tag}"
        undo.callback(ip, "netns", "del", ns)  # also removes the veth pair
        undo.callback(ip, "link", "del", root_end)
        steps = [
            ("netns", "add", ns),
            ("link", "add", root_end, "type", "veth", "peer", "name", ns_end),
            ("link", "set", ns_end, "netns", ns),
            ("addr", "add", f"{root_ip}/30", "dev", root_end),
            ("-n", ns, "addr", "add", f"{ns_ip}/30", "dev", ns_end),
            ("link", "set", root_end, "up"),
            ("-n", ns, "link", "set", ns_end, "up"),
            ("-n", ns, "link", "set", "lo", "up"),
        ]
        if i == 2:
            steps.append(("-n", ns, "route", "add", f"{addr[0]}/32", "via", str(root_ip)))
        for step in steps:
            done = ip(*step)
            if done.returncode != 0:
                raise RuntimeError(f"ip {' '.join(step)}: {done.stderr.strip()}")
        namespaces.append(ns)
    return Hosts(str(addr[0]), tuple(namespaces))
