"""Registry: zot sized for models, with dedupe, an admin and per-team pull and push identities.

zot's accessControl keys (repositories by glob, longest match wins; policies of users and actions;
defaultPolicy, anonymousPolicy; adminPolicy) are those of project-zot/zot examples/README.md,
"Identity-based Authorization". What zot's own source decides with them, per identity, is proven in
test_zot_access.py.
"""

from __future__ import annotations

import json

from shipway.render import registry, tenancy


def test_zot_is_sized_and_authenticated(eks_prod):
    values = eks_prod.releases["zot"]["values"]
    assert values["pvc"]["storage"] == "2Ti" and values["persistence"] is True
    assert "ingress" not in values  # the chart hard-codes the ingress off; its annotations changed nothing
    assert values["serviceHeadless"] == {"enabled": True}  # the StatefulSet's required serviceName
    assert values["secretFiles"] == "<secret>" or values["secretFiles"]["htpasswd"] == "<secret>"
    config = json.loads(values["configFiles"]["config.json"])
    assert config["storage"]["dedupe"] is True
    assert config["http"]["auth"] == {"htpasswd": {"path": "/secret/htpasswd"}}
    assert config["http"]["accessControl"]["repositories"]["**"] == {
        "policies": [], "defaultPolicy": [], "anonymousPolicy": []}
    password = eks_prod.named("shipway-prod-registry-password")
    assert password.type == "random:index/randomPassword:RandomPassword" and password.inputs["length"] == 32


def test_each_team_reads_and_pushes_only_its_own_repositories(eks_prod):
    """Finding 4: one user with create/update on ** was every team's pull secret and every CI's push."""
    config = json.loads(eks_prod.releases["zot"]["values"]["configFiles"]["config.json"])
    control = config["http"]["accessControl"]
    teams = [team.name for team in eks_prod.blueprint.teams]
    assert len(teams) >= 2
    assert control["adminPolicy"] == {"users": [registry.ADMIN_USERNAME],
                                      "actions": ["read", "create", "update", "delete"]}
    assert sorted(control["repositories"]) == sorted(["**", *(f"{team}/**" for team in teams)])
    for team in teams:
        entry = control["repositories"][f"{team}/**"]
        assert entry["defaultPolicy"] == [] and entry["anonymousPolicy"] == []
        assert entry["policies"] == [{"users": [f"{team}-pull"], "actions": ["read"]},
                                     {"users": [f"{team}-push"], "actions": ["read", "create", "update"]}]
    # No identity but the admin is named anywhere else, and nobody may write outside its team.
    named = [(glob, user) for glob, entry in control["repositories"].items()
             for policy in entry["policies"] for user in policy["users"]]
    assert all(glob == f"{user.rsplit('-', 1)[0]}/**" for glob, user in named)


def test_every_identity_has_its_own_generated_password_and_random_salt(eks_prod):
    users = [identity.username for identity in registry.identities(eks_prod.blueprint)]
    assert len(users) == 2 + 2 * len(eks_prod.blueprint.teams)  # the admin, the metrics reader, two per team
    salts = [r for r in eks_prod.of_type("random:index/randomBytes:RandomBytes")]
    assert sorted(r.name for r in salts) == sorted(f"shipway-prod-registry-{user}-salt" for user in users)
    assert {r.inputs["length"] for r in salts} == {registry.SALT_BYTES}
    passwords = {r.name for r in eks_prod.of_type("random:index/randomPassword:RandomPassword")}
    assert passwords == {"shipway-prod-registry-password"} | {
        f"shipway-prod-registry-{user}-password" for user in users if user != registry.ADMIN_USERNAME}


def test_kind_reads_anonymously_through_the_node_port(kind_dev):
    values = kind_dev.releases["zot"]["values"]
    assert values["service"] == {"type": "NodePort", "port": registry.SERVICE_PORT, "nodePort": registry.KIND_NODE_PORT}
    config = json.loads(values["configFiles"]["config.json"])
    assert config["http"]["accessControl"]["repositories"]["**"]["anonymousPolicy"] == ["read"]


def test_external_registry_puts_a_pull_secret_in_every_team_namespace():
    from shipway.spec.blueprint import Blueprint

    blueprint = Blueprint.model_validate({
        "metadata": {"name": "ext"}, "cluster": {"kind": "kind"}, "gitops": {"enabled": False},
        "registry": {"type": "external", "url": "registry.example.com/ml", "username": "puller"},
        "teams": [{"name": "a"}, {"name": "b", "environments": ["prod"]}]})
    layer = registry.render(blueprint, None)
    # No zot; only the node cache's CSI driver, which mounts the external registry's models.
    assert not layer.releases and {o["kind"] for o in layer.objects} == {"CSIDriver", "DaemonSet"}
    secrets = [o for o in tenancy.render(blueprint, {"a": "{}", "b": "{}"}).objects if o["kind"] == "Secret"]
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["a-prod", "a-staging", "b-prod"]
    assert {s["type"] for s in secrets} == {"kubernetes.io/dockerconfigjson"}


def test_zot_puts_its_pull_secret_in_every_team_namespace(eks_prod):
    """Outside kind zot asks every request for credentials; team namespaces get them as a secret."""
    secrets = [s for s in eks_prod.kind("Secret") if s["metadata"]["name"] == registry.PULL_SECRET]
    namespaces = {ns for by_env in eks_prod.blueprint.namespaces.values() for ns in by_env.values()}
    assert {s["metadata"]["namespace"] for s in secrets} == namespaces
    assert {s["type"] for s in secrets} == {"kubernetes.io/dockerconfigjson"}
    # The whole config is a Pulumi secret, so synth shows it masked.
    assert {str(s["stringData"]) for s in secrets} == {"<secret>"}
    resource = next(r for r in eks_prod.of_type("kubernetes:core/v1:Secret")
                    if r.inputs["metadata"]["name"] == registry.PULL_SECRET)
    # Created with the namespaces it lives in, after them.
    assert eks_prod.parent_type(resource) == "shipway:tenancy:Tenancy"
    namespace = next(r for r in eks_prod.of_type("kubernetes:core/v1:Namespace")
                     if r.inputs["metadata"]["name"] == resource.inputs["metadata"]["namespace"])
    assert namespace.urn in resource.dependencies


def test_each_team_namespace_gets_its_own_team_pull_identity():
    config = json.loads(registry.docker_config_json("zot.shipway-registry.svc.cluster.local:5000", "a-pull", "pw"))
    [(server, entry)] = config["auths"].items()
    assert server == "zot.shipway-registry.svc.cluster.local:5000" and entry["username"] == "a-pull"
    from shipway.spec.blueprint import Blueprint

    blueprint = Blueprint.model_validate({"metadata": {"name": "z"}, "cluster": {"kind": "kind"},
                                          "gitops": {"enabled": False}, "teams": [{"name": "a"}, {"name": "b"}]})
    assert (registry.server(blueprint), registry.username(blueprint, "a")) == (server, "a-pull")
    secrets = [o for o in tenancy.render(blueprint, {"a": "CONFIG-A", "b": "CONFIG-B"}).objects
               if o["kind"] == "Secret"]
    assert {s["metadata"]["namespace"]: s["stringData"][".dockerconfigjson"] for s in secrets} == {
        "a-prod": "CONFIG-A", "a-staging": "CONFIG-A", "b-prod": "CONFIG-B", "b-staging": "CONFIG-B"}


def test_prometheus_reads_zot_metrics_as_its_own_user(eks_prod):
    """zot refuses anonymous /metrics once htpasswd is on, unless accessControl.metrics names the reader
    (zot v2.1.18 pkg/api/authz.go MetricsAuthzHandler; examples/config-metrics-authz.json)."""
    config = json.loads(eks_prod.releases["zot"]["values"]["configFiles"]["config.json"])
    assert config["http"]["accessControl"]["metrics"] == {"users": [registry.METRICS_USERNAME]}
    [monitor] = [m for m in eks_prod.kind("PodMonitor") if m["metadata"]["name"] == "shipway-zot"]
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["basicAuth"]["username"] == {"name": registry.METRICS_SECRET, "key": "username"}
    [secret] = [s for s in eks_prod.kind("Secret") if s["metadata"]["name"] == registry.METRICS_SECRET]
    assert secret["metadata"]["namespace"] == monitor["metadata"]["namespace"] == registry.NAMESPACE
    assert secret["stringData"] == "<secret>" or secret["stringData"]["password"] == "<secret>"
    metrics_password = eks_prod.named(f"shipway-prod-registry-{registry.METRICS_USERNAME}-password")
    assert metrics_password.type == "random:index/randomPassword:RandomPassword"
