"""Registry: zot sized for models, authenticated by a generated secret, with dedupe."""

from __future__ import annotations

import json

from shipway.render import registry, tenancy


def test_zot_is_sized_and_authenticated(eks_prod):
    values = eks_prod.releases["zot"]["values"]
    assert values["pvc"]["storage"] == "2Ti" and values["persistence"] is True
    assert values["ingress"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "65536m"
    assert values["secretFiles"] == "<secret>" or values["secretFiles"]["htpasswd"] == "<secret>"
    config = json.loads(values["configFiles"]["config.json"])
    assert config["storage"]["dedupe"] is True
    assert config["http"]["auth"] == {"htpasswd": {"path": "/secret/htpasswd"}}
    assert config["http"]["accessControl"]["repositories"]["**"]["anonymousPolicy"] == []
    password = eks_prod.named("shipway-prod-registry-password")
    assert password.type == "random:index/randomPassword:RandomPassword" and password.inputs["length"] == 32


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
    assert not layer.releases and not layer.objects
    secrets = [o for o in tenancy.render(blueprint, "{}").objects if o["kind"] == "Secret"]
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


def test_the_pull_secret_authenticates_as_the_htpasswd_user():
    config = json.loads(registry.docker_config_json("zot.shipway-registry.svc.cluster.local:5000",
                                                    registry.ZOT_USERNAME, "pw"))
    [(server, entry)] = config["auths"].items()
    assert server == "zot.shipway-registry.svc.cluster.local:5000" and entry["username"] == "shipway"
    from shipway.spec.blueprint import Blueprint

    blueprint = Blueprint.model_validate({"metadata": {"name": "z"}, "cluster": {"kind": "kind"},
                                          "gitops": {"enabled": False}, "teams": [{"name": "a"}]})
    assert (registry.server(blueprint), registry.username(blueprint)) == (server, "shipway")
    secrets = [o for o in tenancy.render(blueprint, "CONFIG").objects if o["kind"] == "Secret"]
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["a-prod", "a-staging"]
    assert all(s["stringData"] == {".dockerconfigjson": "CONFIG"} for s in secrets)
