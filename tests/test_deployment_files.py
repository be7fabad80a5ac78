"""The files a newcomer and an operator rely on say what is true: the README's two commands,
CI calling the README's test command, and a docker-compose topology whose commands exist in
the project, whose variables are all documented, whose secrets come only from the environment
(Docker itself is not available here, so the file is checked for structure)."""

from __future__ import annotations

import re
import shlex
from typing import Any

import click
import yaml

from certflow.cli import main
from certflow.settings import Settings
from certflow.web.app import create_app
from tests.support import ROOT

COMPOSE = ROOT / "docker-compose.yml"
# What the third-party images run: their own programs, not ours.
IMAGE_PROGRAMS = {"redis": "redis-server", "flower": "celery"}


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _ours(service: dict[str, Any]) -> bool:
    return service.get("image") == "certflow:latest"


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make run\b", readme, re.M) and re.search(r"^make test\b", readme, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: install", makefile, re.M) and re.search(r"^test: install", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _certflow_invocations(command: list[str]) -> list[list[str]]:
    if command[0] == "sh":
        return [shlex.split(part) for part in command[-1].split("&&")]
    return [command]


def test_every_service_runs_a_command_that_exists() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "mailpit", "flower"} <= set(services)
    for name, service in services.items():
        command = service.get("command")
        if not _ours(service):
            if command:
                assert command[0] == IMAGE_PROGRAMS[name], f"{name}: {command}"
            continue
        for words in _certflow_invocations(command):
            assert words[0] == "certflow", f"{name}: {words} is not a certflow command"
            sub = main.commands.get(words[1])
            assert sub is not None, f"{name}: `certflow {words[1]}` does not exist"
            with click.Context(main) as ctx:
                sub.make_context(words[1], list(words[2:]), parent=ctx)  # raises on an unknown option


def test_health_checks_ask_real_endpoints() -> None:
    services = _compose()["services"]
    routes = {getattr(r, "path", "") for r in create_app().routes}
    assert "/readyz" in services["web"]["healthcheck"]["test"][-1] and "/readyz" in routes
    for name in ("worker", "beat"):
        port = services[name]["environment"]["CERTFLOW_METRICS_PORT"]
        assert f":{port}/metrics" in services[name]["healthcheck"]["test"][-1]


def test_every_variable_is_documented_and_every_setting_name_is_real() -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert {"POSTGRES_PASSWORD", "CERTFLOW_SECRET_KEY"} <= used
    example = (ROOT / ".env.example").read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    for variable in used:
        assert re.search(rf"^{variable}=", example, re.M), f"{variable} missing from .env.example"
        assert f"`{variable}`" in operations, f"{variable} missing from docs/operations.md"
    fields = {f"CERTFLOW_{name.upper()}" for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        env = service.get("environment") or {}
        for key in env:
            if key.startswith("CERTFLOW_"):
                assert key in fields, f"{name}: {key} is not a setting (typo?)"
        if _ours(service):
            assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and env["REDIS_URL"].startswith("redis://")
            assert env["CERTFLOW_ENV"] == "production" and env["CERTFLOW_CLOCK_CONTROLLABLE"] == "false"


def test_secrets_only_from_the_environment() -> None:
    for name, service in _compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:[?-][^}]*)?\}", str(value)), f"{name}: {key} is written in the file"
        assert "password@" not in str(service.get("environment", {})).lower()


def test_web_believes_forwarded_headers_only_from_the_configured_proxy() -> None:
    """Behind a TLS proxy the limits must count the client's IP: web is told the proxy's
    address, settable per deployment, and trusts no one else by default (never ``*``)."""
    web = _compose()["services"]["web"]["environment"]
    assert web["FORWARDED_ALLOW_IPS"] == "${FORWARDED_ALLOW_IPS:-127.0.0.1}"
    assert web["DATABASE_URL"] == _compose()["services"]["worker"]["environment"]["DATABASE_URL"]


def test_long_running_services_restart_and_have_limits_and_dev_tools_are_in_a_profile() -> None:
    for name, service in _compose()["services"].items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("cpus") and limits.get("memory"), f"{name} has no resource limits"
        if name == "migrate":
            assert service["restart"] == "no"
        else:
            assert service["restart"] == "unless-stopped", name
        assert (service.get("profiles") == ["dev"]) == (name in ("mailpit", "flower")), name


def test_the_image_carries_what_the_commands_need() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("certflow", "handlers", "worker", "processes"):
        assert f"COPY {package} {package}" in dockerfile
