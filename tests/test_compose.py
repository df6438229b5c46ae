"""docker-compose.yml, checked without a Docker engine: the same services, commands, dependencies and
environment as the stack `make stack` runs (tickml/stack.py), host ports on 127.0.0.1 only, a restart policy
and a health gate everywhere it matters, no secret in the file, and commands that the installed tools accept."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tickml import stack
from tickml.cli import parser

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docker-compose.yml").read_text()
SERVICES: dict[str, dict] = yaml.safe_load(TEXT)["services"]
LISTENERS = {"postgres", "mlflow", "dagster-webserver", "scoring"}  # what others wait for
# ${VAR:?...} references are resolved by compose from the environment; give the check a value to see through
RESOLVED = re.sub(r"\$\{TICKML_PG_PASSWORD:\?[^}]*\}", "PASSWORD", TEXT)


def _command(name: str) -> list[str]:
    service = yaml.safe_load(RESOLVED)["services"][name]
    return shlex.split(service["command"]) if isinstance(service["command"], str) else service["command"]


def test_every_published_port_is_on_loopback_and_every_service_restarts() -> None:
    published = [(name, port) for name, s in SERVICES.items() for port in s.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for _, port in published), published
    assert {name: s.get("restart") for name, s in SERVICES.items()} == dict.fromkeys(
        SERVICES, "unless-stopped"
    )


def test_start_up_waits_for_health_and_every_awaited_service_has_a_check() -> None:
    assert {name for name, s in SERVICES.items() if "healthcheck" in s} == LISTENERS | {"dagster-daemon"}
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in LISTENERS and condition == {"condition": "service_healthy"}, (
                name,
                dependency,
            )


def test_no_secret_is_written_in_the_file() -> None:
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${TICKML_PG_PASSWORD:?")
    urls = re.findall(r"postgres(?:ql)?(?:\+psycopg2?)?://[^\s\"']+", TEXT)
    assert urls and all(re.match(r"[^:]+://tickml:\$\{TICKML_PG_PASSWORD:\?", url) for url in urls), urls
    environments = [s["environment"] for s in SERVICES.values() if isinstance(s.get("environment"), dict)]
    secrets = {k: v for env in environments for k, v in env.items() if re.search("PASSWORD|TOKEN|SECRET", k)}
    assert secrets and all(re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*|:-)\}", v) for v in secrets.values()), secrets


@pytest.mark.parametrize("name", ["scoring", "stream", "feed"])
def test_tickml_commands_parse_and_the_service_listens_past_the_container(name: str) -> None:
    command = _command(name)
    assert command[0] == "tickml"
    parser().parse_args(command[1:])  # SystemExit on an unknown option
    if name == "scoring":
        assert (
            command[command.index("--host") + 1] == "0.0.0.0"
        )  # reachable by the stream; published on loopback


@pytest.mark.parametrize("name", ["mlflow", "dagster-webserver", "dagster-daemon"])
def test_server_commands_use_only_options_their_tools_have(name: str) -> None:
    command = _command(name)
    tool = Path(sys.executable).with_name(command[0])
    words = [w for w in command[1:] if not w.startswith("-")][:1] if name != "dagster-webserver" else []
    shown = subprocess.run([str(tool), *words, "--help"], capture_output=True, text=True, timeout=120).stdout
    options = {w.split("=")[0] for w in command if w.startswith("-")}
    assert options and all(re.search(rf"(^|[\s,]){re.escape(o)}\b", shown) for o in options), (
        options,
        shown[-500:],
    )


def test_the_mlflow_server_answers_its_peers_and_loads_no_pickle() -> None:
    command = _command("mlflow")
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert "mlflow:5000" in allowed  # the Host header the other containers send
    assert SERVICES["mlflow"]["environment"]["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    assert "--backend-store-uri" not in command  # its password stays out of the process list
    assert "--serve-artifacts" in command


DEFINITION = {s.name: s for s in stack.services(stack.COMPOSE, feed=["--speed", "1"])}


def test_the_compose_stack_is_the_stack_definition() -> None:
    assert set(SERVICES) == set(DEFINITION)
    for name, service in DEFINITION.items():
        if name != "postgres":  # the image's own server
            assert _command(name) == service.command, name
        assert set(SERVICES[name].get("depends_on", {})) == set(service.depends_on), name


def test_every_tickml_container_has_the_stack_environment() -> None:
    resolved = yaml.safe_load(RESOLVED)["services"]
    expected = stack.environment(stack.COMPOSE, "PASSWORD") | {
        "TICKML_ADMIN_TOKEN": "${TICKML_ADMIN_TOKEN:-}"
    }
    for name in set(SERVICES) - {"postgres"}:
        assert resolved[name]["environment"] == expected, name


def test_health_checks_are_the_stack_s_own() -> None:
    for name, service in DEFINITION.items():
        check = " ".join(SERVICES[name].get("healthcheck", {}).get("test", []))
        if service.health.startswith("http:"):
            assert f"http://127.0.0.1:{stack.COMPOSE.ports[name]}{service.health[5:]}'" in check, name
        elif service.health == "postgres":
            assert "pg_isready" in check
        elif service.health == "daemon":
            assert "liveness-check" in check
