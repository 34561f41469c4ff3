"""The retraining trigger in the platform: its workload's security, its reach, Alertmanager's route, its secrets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipway.delivery.render import render as render_model
from shipway.platform.program import secret_keys
from shipway.render import observability, retrain, tenancy
from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint
from shipway.spec.blueprint import Blueprint
from shipway.spec.model import ModelSpec

ROOT = Path(__file__).resolve().parents[3]
TOKEN = object()  # stands for the Pulumi secret Output the layer passes


@pytest.fixture(scope="module")
def eks() -> Blueprint:
    return load_blueprint(ROOT / "blueprints" / "eks-prod.yaml")


@pytest.fixture(scope="module")
def objects(eks: Blueprint) -> dict[tuple[str, str, str], dict[str, Any]]:
    secrets = {key: f"secret:{key}" for key in secret_keys(eks)} | {"retrainGithubToken": TOKEN}
    layer = observability.render(eks, secrets)
    return {(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]): obj for obj in layer.objects}


def test_the_token_is_a_pulumi_secret_config_key_and_reaches_only_the_secret(eks: Blueprint, objects) -> None:
    assert "retrainGithubToken" in secret_keys(eks)
    secret = objects[("Secret", "monitoring", retrain.NAME)]
    assert secret["stringData"] == {"github-token": TOKEN}
    (container,) = objects[("Deployment", "monitoring", retrain.NAME)]["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "SHIPWAY_GITHUB_TOKEN",
                                 "valueFrom": {"secretKeyRef": {"name": retrain.NAME, "key": "github-token"}}}]


def test_the_workload_runs_from_the_shipway_image_with_the_security_defaults(eks: Blueprint, objects) -> None:
    deployment = objects[("Deployment", "monitoring", retrain.NAME)]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == platform_profile(eks)["images"]["shipway"]
    assert container["args"][:1] == ["retrain-trigger"] and "--attempts" in container["args"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] and container["resources"]["limits"] == {"cpu": "500m",
                                                                                         "memory": "256Mi"}
    assert deployment["spec"]["replicas"] == 1


def test_it_reaches_team_namespaces_only_to_read_configmaps_and_write_events(eks: Blueprint, objects) -> None:
    # Made by the tenancy layer, with the team namespaces, which come after observability.
    team_objects = [obj for obj in tenancy.render(eks).objects if obj["metadata"]["name"] == retrain.NAME]
    roles = {obj["metadata"]["namespace"]: obj for obj in team_objects if obj["kind"] == "Role"}
    bindings = [obj for obj in team_objects if obj["kind"] == "RoleBinding"]
    assert len(bindings) == len(roles) and all(binding["subjects"] == [
        {"kind": "ServiceAccount", "name": retrain.NAME, "namespace": "monitoring"}] for binding in bindings)
    teams = {ns for team in eks.teams for ns in eks.namespaces[team.name].values()}
    assert set(roles) == teams
    for role in roles.values():
        assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                                 {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]
    assert not [key for key in objects if key[0] in ("ClusterRole", "ClusterRoleBinding")]
    policy = objects[("NetworkPolicy", "monitoring", retrain.NAME)]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8080}]}]


def test_alertmanager_routes_drift_and_accuracy_to_the_service_before_people(eks: Blueprint) -> None:
    config = observability.receivers_config(eks, {receiver.secret: "x" for receiver in eks.observability.receivers})
    routes = config["route"]["routes"]
    assert routes[0]["matchers"] == ['alertname="Watchdog"']
    assert routes[1]["receiver"] == retrain.NAME and routes[1]["continue"] is True
    assert routes[1]["matchers"] == ['alertname=~"ShipwayModelFeatureDrift|ShipwayModelOnlineAccuracyLow"']
    assert [route["receiver"] for route in routes[2:]] == [receiver.name for receiver in eks.observability.receivers]
    receiver = next(item for item in config["receivers"] if item["name"] == retrain.NAME)
    assert receiver["webhook_configs"][0]["url"] == "http://shipway-retrain-trigger.monitoring.svc.cluster.local:8080/alerts"


def test_a_blueprint_without_retraining_has_no_trigger() -> None:
    kind = load_blueprint(ROOT / "blueprints" / "kind-dev.yaml")
    names = [obj["metadata"]["name"] for obj in observability.render(kind, {}).objects]
    assert retrain.NAME not in names and "shipway-retrain" not in names


def test_retraining_without_credentials_is_refused(eks: Blueprint) -> None:
    data = eks.model_dump(by_alias=True, exclude_unset=True)
    data["observability"]["retraining"] = {}
    with pytest.raises(ValueError, match="no trigger credentials"):
        Blueprint.model_validate(data)


def test_a_model_with_retrain_commits_its_settings_beside_its_rollout(eks: Blueprint) -> None:
    spec = ModelSpec.model_validate({
        "name": "churn", "team": eks.teams[0].name, "version": "1", "runtime": "sklearn", "accuracy": {},
        "retrain": {"signals": ["accuracy"], "cooldown": "12h",
                    "repository": {"provider": "gitlab", "project": "ml/churn"}}})
    environment = next(iter(eks.namespaces[spec.team]))
    (config_map,) = [obj for obj in render_model(spec, platform_profile(eks), environment) if obj["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "churn-retrain"
    assert config_map["metadata"]["namespace"] == eks.namespaces[spec.team][environment]
    assert yaml.safe_load(config_map["data"]["retrain.json"]) == {
        "model": "churn", "team": spec.team, "signals": ["accuracy"], "cooldownSeconds": 43200.0,
        "repository": {"provider": "gitlab", "project": "ml/churn", "ref": "main"}}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_a_trigger_that_keeps_failing_alerts(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": retrain.failure_rules()}))
    series = 'shipway_retrain_trigger_failures_total{namespace="fraud-prod",model="churn",provider="github"}'
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [{"series": series, "values": "0 0 1 1 1"}],
                   "alert_rule_test": [
                       {"eval_time": "1m", "alertname": "ShipwayRetrainTriggerFailing", "exp_alerts": []},
                       {"eval_time": "3m", "alertname": "ShipwayRetrainTriggerFailing", "exp_alerts": [{
                           "exp_labels": {"severity": "warning", "namespace": "fraud-prod", "model": "churn"},
                           "exp_annotations": {
                               "summary": "Retraining could not be started",
                               "description": "churn in fraud-prod: the retraining trigger failed after every "
                                              "retry; check the service's log and its token."}}]}]}]}))
    done = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
