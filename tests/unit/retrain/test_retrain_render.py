"""The retraining trigger in the platform: its workload's security, its reach, Alertmanager's route, its secrets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipway import catalog
from shipway.delivery.render import render as render_model
from shipway.platform.program import secret_keys
from shipway.render import observability, retrain, tenancy
from shipway.render.common import kube_api_egress, service_monitor
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


def test_the_blueprints_allow_list_reaches_the_service_by_team_namespace(eks: Blueprint, objects,
                                                                           tmp_path: Path) -> None:
    """Review 1.3: teams[].retrainRepositories, rendered into the service's config and read back by the service."""
    from shipway.retrain.service import Target, load_allowed

    config_map = objects[("ConfigMap", "monitoring", retrain.NAME)]
    document = json.loads(config_map["data"][retrain.ALLOWED_KEY])
    assert set(document) == {ns for team in eks.teams for ns in eks.namespaces[team.name].values()}
    assert document["fraud-prod"] == {"team": "fraud", "github": ["fraud/*"], "gitlab": []}
    assert document["llm-prod"] == {"team": "llm", "github": [], "gitlab": []}
    deployment = objects[("Deployment", "monitoring", retrain.NAME)]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    path = container["args"][container["args"].index("--allowed") + 1]
    (mount,) = container["volumeMounts"]
    assert path == f"{mount['mountPath']}/{retrain.ALLOWED_KEY}" and mount["readOnly"] is True
    assert pod["volumes"] == [{"name": mount["name"], "configMap": {"name": retrain.NAME}}]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["shipway.dev/config-sha256"]
    # The service reads what the platform renders, and applies it per namespace.
    (tmp_path / "allowed.json").write_text(config_map["data"][retrain.ALLOWED_KEY])
    allowed = load_allowed(tmp_path / "allowed.json")
    target = Target("churn", "fraud", "fraud-prod", ("drift",), 60.0, "github", "fraud/churn")
    assert allowed["fraud-prod"].holds(target) and not allowed["llm-prod"].holds(target)


def test_a_bad_allow_list_entry_is_refused_where_it_is_written(eks: Blueprint) -> None:
    data = eks.model_dump(by_alias=True, exclude_unset=True)
    data["teams"][0]["retrainRepositories"] = {"github": ["not a repository"]}
    with pytest.raises(ValueError, match=r"teams\.0\.retrainRepositories\.github\.0"):
        Blueprint.model_validate(data)


def test_egress_is_dns_the_api_server_and_the_forges_each_by_its_own_rule(eks: Blueprint, objects) -> None:
    """Review 1.6: `ports: 443, 6443` with no `to` opened every address for the Kubernetes API."""
    policy = objects[("NetworkPolicy", "monitoring", retrain.NAME)]["spec"]
    dns, kube_api, forges = policy["egress"]
    assert all(rule.get("to") for rule in policy["egress"])  # no rule reaches every address
    assert {port["port"] for port in dns["ports"]} == {53}
    # The API server by its addresses (eks-prod: the VPC and the `kubernetes` ClusterIP), the rule every platform
    # namespace uses.
    assert kube_api == kube_api_egress(eks) and kube_api["to"] == [
        {"ipBlock": {"cidr": eks.cluster.network.vpc_cidr}}, {"ipBlock": {"cidr": "172.20.0.1/32"}}]
    assert forges["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(tenancy.PRIVATE_RANGES)}}]
    assert forges["ports"] == [{"protocol": "TCP", "port": 443}]
    # A self-hosted GitLab on its own port: that port, still only towards the internet.
    data = eks.model_dump(by_alias=True, exclude_unset=True)
    data["observability"]["retraining"]["gitlabUrl"] = "https://gitlab.acme.dev:8443"
    assert retrain.egress(Blueprint.model_validate(data))[2]["ports"] == [
        {"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 8443}]


def test_the_service_monitor_is_the_common_one(objects) -> None:
    """Review 3.6: the Prometheus release label comes from the catalog, through render.common.service_monitor."""
    monitor = objects[("ServiceMonitor", "monitoring", retrain.NAME)]
    assert monitor["metadata"]["labels"]["release"] == catalog.PROMETHEUS_RELEASE
    assert monitor["spec"] == service_monitor(retrain.NAME, "monitoring", retrain.LABELS, "http")["spec"]
    service = objects[("Service", "monitoring", retrain.NAME)]
    assert {port["name"] for port in service["spec"]["ports"]} == {"http"}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
