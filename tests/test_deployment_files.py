"""The files a newcomer and an operator rely on say what is true: the README's two commands,
CI calling the README's test command, and a docker-compose topology that runs commands which
exist (Docker itself is not available here, so the file is checked for structure)."""

from __future__ import annotations

import importlib
import re

import yaml

from certflow.cli import main
from tests.support import ROOT


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make run\b", readme, re.M) and re.search(r"^make test\b", readme, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: install", makefile, re.M) and re.search(r"^test: install", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_compose_topology_runs_real_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    commands = set(main.commands)
    for name in ("migrate", "worker", "beat"):
        command = services[name]["command"]
        words = command[-1].split() if command[0] == "sh" else command
        cli_words = [w for w in words if w in commands]
        assert cli_words, f"{name}: {command} runs no certflow command"
    web = services["web"]["command"]
    module, attr = web[1].split(":")
    assert hasattr(importlib.import_module(module), attr)
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and env["REDIS_URL"].startswith("redis://")
        assert env["CERTFLOW_ENV"] == "production"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("certflow", "handlers", "worker", "processes"):
        assert f"COPY {package} {package}" in dockerfile
