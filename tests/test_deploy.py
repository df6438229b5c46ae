"""deploy/k8s, checked without a cluster: the manifests parse, run the commands the stack definition runs
(options the installed tools accept), shard every symbol to exactly one replica and its stream, and take
every secret from a Kubernetes Secret, never from a literal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipelines.shards import Shard
from tickml import stack
from tickml.cli import parser

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
MANIFESTS = [
    d
    for f in sorted(K8S.glob("*.yaml"))
    if f.name != "dagster-values.yaml"
    for d in yaml.safe_load_all(f.read_text())
    if d
]
CONTAINERS = {
    d["metadata"]["name"]: c
    for d in MANIFESTS
    if d["kind"] == "Deployment"
    for c in d["spec"]["template"]["spec"]["containers"]
}
DEFINITION = {s.name: s for s in stack.services(stack.COMPOSE)}


def test_tickml_containers_run_commands_the_cli_accepts() -> None:
    tickml = {name: c["command"] for name, c in CONTAINERS.items() if c["command"][0] == "tickml"}
    assert set(tickml) == {"scoring-0", "scoring-1", "stream-0", "stream-1"}
    for command in tickml.values():
        parser().parse_args(command[1:])  # SystemExit on an unknown option
    assert tickml["scoring-0"] == DEFINITION["scoring"].command


def test_every_symbol_is_scored_by_one_replica_and_streamed_to_it() -> None:
    shards = {
        name: Shard.parse(next(e["value"] for e in c["env"] if e["name"] == "TICKML_SHARD"))
        for name, c in CONTAINERS.items()
        if name.startswith("scoring-")
    }
    assert sorted(s.index for s in shards.values()) == list(range(len(shards)))
    assert {s.count for s in shards.values()} == {len(shards)}
    for name, shard in shards.items():
        stream = CONTAINERS[name.replace("scoring", "stream")]["command"]
        assert stream[stream.index("--shard") + 1] == str(shard)
        assert stream[stream.index("--url") + 1] == f"http://{name}:3001"
    for symbol in ("NIFTY", "BANKNIFTY", "AMZN", "PETR4", "BTCUSDT"):
        assert sum(s.owns(symbol) for s in shards.values()) == 1


def test_the_mlflow_server_is_the_stack_s_with_object_storage() -> None:
    command = CONTAINERS["mlflow"]["command"]
    local = DEFINITION["mlflow"].command
    assert command[command.index("--artifacts-destination") + 1].startswith("s3://")
    assert {w for w in command if w.startswith("--")} == {w for w in local if w.startswith("--")}
    assert "--backend-store-uri" not in command


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_no_secret_is_a_literal(name: str) -> None:
    for entry in CONTAINERS[name].get("env", []):
        if (
            re.search("PASSWORD|TOKEN|SECRET|KEY|_URL|_URI", entry["name"])
            and "TRACKING" not in entry["name"]
        ):
            assert "valueFrom" in entry and "value" not in entry, entry


def test_dagster_runs_each_run_as_a_kubernetes_job_of_the_tickml_image() -> None:
    values = yaml.safe_load((K8S / "dagster-values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (location,) = values["dagster-user-deployments"]["deployments"]
    assert location["dagsterApiGrpcArgs"] == ["-m", "orchestration.definitions"]
    image = f"{location['image']['repository']}:{location['image']['tag']}"
    assert {c["image"] for c in CONTAINERS.values()} == {image}
    assert values["postgresql"]["enabled"] is False
