"""The container stack, checked without a Docker engine (there is none on these machines): the compose file
is valid for Docker Compose, and every service built from the project's image runs a command that image
has (a console script the project installs, with its subcommand, app or locustfile present)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.cli import app as bench_app
from shared.config import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
IMAGE = "fastapi-sync-vs-async:latest"


def _compose_command() -> list[str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        # Debian's docker-compose 1.29 validates a file without an engine (scripts/bootstrap installs it too).
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-compose"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
    if shutil.which("docker-compose") is None:
        pytest.skip(
            "neither `docker compose` nor `docker-compose` is available (apt-get install docker-compose)"
        )
    return ["docker-compose"]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The compose file as Docker Compose resolves it (anchors merged, variables filled in)."""
    cmd = [*_compose_command(), "-f", str(COMPOSE)]
    env = {**os.environ, "DB_PASSWORD": "not-a-secret"}
    check = subprocess.run([*cmd, "config", "-q"], env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    full = subprocess.run(
        [*cmd, "--profile", "harness", "config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert full.returncode == 0, full.stderr
    resolved: dict[str, Any] = yaml.safe_load(full.stdout)
    return resolved


def test_compose_has_the_stack_the_readme_describes(config: dict[str, Any]) -> None:
    services = config["services"]
    assert {"db", "seed", "sync", "async", "locust-master", "locust-worker", "bench"} <= set(services)
    assert services["sync"]["depends_on"]["seed"]["condition"] == "service_completed_successfully"
    assert services["db"]["healthcheck"]["test"]
    assert "127.0.0.1:8089:8089" in str(services["locust-master"]["ports"])
    worker = services["locust-worker"]
    assert "ports" not in worker and "container_name" not in worker  # so `--scale locust-worker=4` works
    assert worker["command"][-1] == "locust-master:5557"
    assert services["bench"]["profiles"] == ["harness"]


def _console_scripts() -> set[str]:
    """The console scripts of this environment: the same pyproject.toml the image installs."""
    return {ep.name for ep in entry_points(group="console_scripts")}


def _check_command(name: str, command: list[str]) -> None:
    program, args = command[0], command[1:]
    assert program in _console_scripts(), f"{name}: {program!r} is not an entry point the image installs"
    if program == "bench":
        commands = {
            c.name or (c.callback.__name__ if c.callback else "") for c in bench_app.registered_commands
        }
        groups = {g.name: g.typer_instance for g in bench_app.registered_groups if g.typer_instance}
        assert args[0] in commands | set(groups), f"{name}: `bench {args[0]}` does not exist"
        if args[0] in groups:
            sub = {c.name for c in groups[args[0]].registered_commands}
            assert args[1] in sub, f"{name}: `bench {args[0]} {args[1]}` does not exist"
    elif program == "uvicorn":
        module, _, attr = args[0].partition(":")
        assert hasattr(importlib.import_module(module), attr), f"{name}: {args[0]} does not import"
    elif program == "locust":
        locustfile = Path(args[args.index("-f") + 1])
        assert (REPO_ROOT / locustfile).is_file(), f"{name}: no {locustfile} in the image's working folder"


def test_every_service_of_the_image_runs_an_entry_point_the_image_has(config: dict[str, Any]) -> None:
    ours = {name: svc for name, svc in config["services"].items() if svc.get("image") == IMAGE}
    assert set(ours) == {"seed", "sync", "async", "locust-master", "locust-worker", "bench"}
    for name, svc in ours.items():
        assert "build" in svc and "entrypoint" not in svc, name
        _check_command(name, svc["command"])


def test_the_dockerfile_installs_at_build_time_and_runs_as_a_user() -> None:
    text = DOCKERFILE.read_text()
    assert "pip wheel" in text or "'wheel'" in text  # dependencies compiled at build time
    assert 'pip install --no-index --no-deps --no-build-isolation -e ".[mysqlclient]"' in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".run", ".git"} <= set(ignored)
