"""The lock file (`requirements.lock`, made by `make lock`): what it pins, its hash, and how a venv differs.

Stdlib only: `scripts/bootstrap` runs `python -m bench.store.lock extras` right after installing the lock, and
every run records `lock_state()` in meta.json so two runs can tell whether they measured the same stack.
"""

from __future__ import annotations

import hashlib
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

LOCK_FILE = Path(__file__).resolve().parents[2] / "requirements.lock"
PROJECT = "fastapi-sync-vs-async"
# Not pinned by the lock: the venv's own installer, and the project itself (installed editable, no deps).
UNLOCKED = frozenset({"pip", PROJECT})
# Installed only where it can be built (libmariadb-dev); a venv without it still matches the lock.
OPTIONAL = frozenset({"mysqlclient"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize(name: str) -> str:
    """PEP 503: `PyMySQL`, `pymysql` and `py_mysql`-style spellings compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path = LOCK_FILE) -> dict[str, str]:
    """{normalized name: version} for every `name==version` line of the lock."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            out[normalize(match[1])] = match[2]
    return out


def digest(path: Path = LOCK_FILE) -> str | None:
    """sha256 of the lock file's bytes (its first 12 hex digits name a stack in reports); None without one."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def installed() -> dict[str, str]:
    return {normalize(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def differences(locked: dict[str, str], present: dict[str, str]) -> dict[str, list[str]]:
    """How a venv (`present`) differs from the lock: packages missing, at another version, or not in it."""
    missing = sorted(n for n in locked if n not in present and n not in OPTIONAL)
    moved = sorted(
        f"{n} {present[n]} (lock: {v})" for n, v in locked.items() if n in present and present[n] != v
    )
    extra = sorted(n for n in present if n not in locked and n not in UNLOCKED)
    return {"missing": missing, "other_version": moved, "not_in_lock": extra}


def lock_state(path: Path = LOCK_FILE) -> dict[str, Any]:
    """What meta.json records: the lock's hash, and whether this interpreter's packages are the lock's."""
    sha = digest(path)
    if sha is None:
        return {"lock_sha256": None, "lock_matches_venv": None}
    diff = differences(pins(path), installed())
    return {"lock_sha256": sha, "lock_matches_venv": not any(diff.values())}


def short(sha: str | None) -> str:
    return sha[:12] if sha else "no lock recorded"


def stack_line(meta: dict[str, Any]) -> str:
    """The stack a run measured, in one line: the lock's hash and the key packages' versions."""
    packages = meta.get("packages") or {}
    lock = short(meta.get("lock_sha256"))
    if meta.get("lock_matches_venv") is False:
        lock += " (the venv did not match it)"
    shown = ", ".join(f"{name} {version}" for name, version in packages.items() if version)
    return f"requirements.lock {lock}; {shown}" if shown else f"requirements.lock {lock}"


def stack_difference(first: dict[str, Any], second: dict[str, Any]) -> str | None:
    """One line when two runs' meta.json say they measured different stacks (locks or package versions)."""
    a, b = first.get("packages") or {}, second.get("packages") or {}
    moved = [
        f"{n} {a.get(n) or '-'} -> {b.get(n) or '-'}" for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)
    ]
    locks = first.get("lock_sha256"), second.get("lock_sha256")
    if locks[0] == locks[1] and not moved:
        return None
    line = f"the two runs measured different stacks: requirements.lock {short(locks[0])} vs {short(locks[1])}"
    if moved:
        return f"{line}; {', '.join(moved)}"
    return f"{line} (the key packages agree; others in the lock differ)"


def main(argv: list[str]) -> int:
    """`extras`: names installed but not in the lock (bootstrap uninstalls them); `check`: exit 1 on any
    difference, each printed on its own line."""
    diff = differences(pins(), installed())
    if argv[:1] == ["extras"]:
        print("\n".join(diff["not_in_lock"]))
        return 0
    if argv[:1] == ["check"]:
        lines = [f"{kind.replace('_', ' ')}: {item}" for kind, items in diff.items() for item in items]
        print("\n".join(lines) if lines else f"venv matches {LOCK_FILE.name} ({short(digest())})")
        return 1 if lines else 0
    print("usage: python -m bench.store.lock extras|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
