"""Registry: zot sized for models, authenticated by a generated secret, with dedupe."""

from __future__ import annotations

import json

from shipway.render import registry


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
    layer = registry.render(blueprint, None, "{}")
    assert not layer.releases
    assert sorted(s["metadata"]["namespace"] for s in layer.objects) == ["a-prod", "a-staging", "b-prod"]
    assert {s["type"] for s in layer.objects} == {"kubernetes.io/dockerconfigjson"}
