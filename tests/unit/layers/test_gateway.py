"""The gateway layer: Gateway API CRDs at their pin, Envoy Gateway, the shared Gateway, certificates, zot's route.

Facts checked against the pinned sources in ../shared/charts: the Envoy Gateway chart's crds subchart
(charts/crds/crds/gatewayapi-crds.yaml, annotated with its Gateway API bundle version), the Gateway API
v1.6.1 install files, and ARGO-ROLLOUTS-GATEWAYAPI-PLUGIN.md (plugin name, image, binary path).
"""

from __future__ import annotations

import pytest
import yaml
from crd_support import charts_dir
from layer_support import REPO

from shipway import catalog
from shipway.render import cluster, gateway, registry, serving, tenancy
from shipway.spec import load_blueprint
from shipway.spec.base import Violations
from shipway.spec.blueprint import Blueprint


def _gateway_objects(synthesised, kind: str) -> list[dict]:
    return [obj for obj in synthesised.kind(kind) if obj["metadata"].get("namespace") in (gateway.NAMESPACE, None)]


def _the_gateway(synthesised) -> dict:
    [found] = synthesised.kind("Gateway")
    return found


def test_gateway_api_crds_come_from_envoy_gateway_at_the_pinned_version():
    charts = charts_dir()
    if charts is None:
        pytest.skip("the pinned charts are not at ../shared/charts (set SHIPWAY_CHARTS)")
    bundled = list(yaml.safe_load_all(
        (charts / f"gateway-helm-{catalog.ENVOY_GATEWAY.version}/charts/crds/crds/gatewayapi-crds.yaml").read_text()))
    upstream = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(
        (charts / f"gateway-api-{catalog.GATEWAY_API_VERSION}/experimental-install.yaml").read_text())
        if doc and doc["kind"] == "CustomResourceDefinition"}
    crds = [doc for doc in bundled if doc and doc["kind"] == "CustomResourceDefinition"]
    assert {doc["metadata"]["name"] for doc in crds} >= {"gateways.gateway.networking.k8s.io",
                                                         "httproutes.gateway.networking.k8s.io"}
    for doc in crds:
        assert doc["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == catalog.GATEWAY_API_VERSION
        # The same CRDs the Gateway API release publishes, not a fork of them.
        assert doc["spec"] == upstream[doc["metadata"]["name"]]["spec"], doc["metadata"]["name"]


def test_every_example_installs_the_gateway_layer(each_blueprint):
    assert {"cert-manager", "envoy-gateway"} <= set(each_blueprint.releases)
    assert each_blueprint.releases["envoy-gateway"]["chart"] == catalog.ENVOY_GATEWAY.ref
    [gateway_class] = each_blueprint.kind("GatewayClass")
    assert gateway_class["spec"]["controllerName"] == gateway.CONTROLLER_NAME
    [proxy] = each_blueprint.kind("EnvoyProxy")
    ref = gateway_class["spec"]["parametersRef"]
    assert (ref["kind"], ref["name"], ref["namespace"]) == ("EnvoyProxy", proxy["metadata"]["name"],
                                                            proxy["metadata"]["namespace"])
    assert _the_gateway(each_blueprint)["spec"]["gatewayClassName"] == gateway_class["metadata"]["name"]


def test_each_team_environment_has_a_listener_only_its_namespace_can_use(each_blueprint):
    blueprint = each_blueprint.blueprint
    listeners = {item["name"]: item for item in _the_gateway(each_blueprint)["spec"]["listeners"]}
    for team in blueprint.teams:
        for env, ns in blueprint.namespaces[team.name].items():
            listener = listeners[gateway.team_listener(team.name, env)]
            assert listener["protocol"] == "HTTPS" and listener["port"] == 443
            assert listener["allowedRoutes"]["namespaces"] == {
                "from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
            assert listener["hostname"] == blueprint.route_host(team.name, env, "*")
    # One HTTPS listener per team and environment, zot's, and plain HTTP.
    assert len(listeners) == 2 + sum(len(envs) for envs in blueprint.namespaces.values())
    assert listeners[gateway.HTTP_LISTENER]["allowedRoutes"]["namespaces"] == {"from": "Same"}


def test_every_https_listener_has_a_certificate_for_its_host(each_blueprint):
    certificates = {c["spec"]["secretName"]: c for c in each_blueprint.kind("Certificate")
                    if c["metadata"]["namespace"] == gateway.NAMESPACE}
    issuers = {i["metadata"]["name"] for i in each_blueprint.kind("ClusterIssuer")}
    for listener in _the_gateway(each_blueprint)["spec"]["listeners"]:
        if listener["protocol"] != "HTTPS":
            continue
        [ref] = listener["tls"]["certificateRefs"]
        certificate = certificates[ref["name"]]
        assert certificate["spec"]["dnsNames"] == [listener["hostname"]]
        assert certificate["spec"]["issuerRef"]["name"] in issuers


def test_kind_gets_a_private_ca_and_clouds_acme(kind_dev, eks_prod, gke_prod):
    issuers = {i["metadata"]["name"]: i["spec"] for i in kind_dev.kind("ClusterIssuer")}
    assert issuers[gateway.ISSUER] == {"ca": {"secretName": gateway.CA_SECRET}}
    [ca] = [c for c in kind_dev.kind("Certificate") if c["spec"]["secretName"] == gateway.CA_SECRET]
    # A CA ClusterIssuer reads its secret from cert-manager's own namespace.
    assert ca["metadata"]["namespace"] == gateway.CERT_MANAGER_NAMESPACE and ca["spec"]["isCA"] is True
    assert issuers[ca["spec"]["issuerRef"]["name"]] == {"selfSigned": {}}

    [eks_issuer] = eks_prod.kind("ClusterIssuer")
    assert eks_issuer["spec"]["acme"]["solvers"] == [{"dns01": {"route53": {"region": "eu-west-1"}}}]
    [gke_issuer] = gke_prod.kind("ClusterIssuer")
    [solver] = gke_issuer["spec"]["acme"]["solvers"]
    [parent] = solver["http01"]["gatewayHTTPRoute"]["parentRefs"]
    # HTTP-01 answers through the Gateway's plain-HTTP listener, which cert-manager may use (enableGatewayAPI).
    assert parent["sectionName"] in {item["name"] for item in _the_gateway(gke_prod)["spec"]["listeners"]
                                     if item["protocol"] == "HTTP"}
    assert gke_prod.releases["cert-manager"]["values"]["config"]["enableGatewayAPI"] is True


def test_kind_reaches_the_gateway_through_mapped_node_ports(kind_dev):
    [proxy] = kind_dev.kind("EnvoyProxy")
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "NodePort"
    node_ports = {p["port"]: p["nodePort"] for p in service["patch"]["value"]["spec"]["ports"]}
    listener_ports = {item["port"] for item in _the_gateway(kind_dev)["spec"]["listeners"]}
    assert set(node_ports) == listener_ports
    config = cluster.kind_config(kind_dev.blueprint)
    mapped = {m["containerPort"]: m for m in config["nodes"][0]["extraPortMappings"]}
    assert mapped[node_ports[443]]["hostPort"] == kind_dev.blueprint.cluster.https_port
    assert mapped[node_ports[80]]["hostPort"] == kind_dev.blueprint.cluster.http_port
    assert {m["listenAddress"] for m in mapped.values()} == {"127.0.0.1"}
    # Plain HTTP redirects to the HTTPS port kind maps, not to 443.
    [redirect] = [r for r in kind_dev.kind("HTTPRoute") if r["metadata"]["name"] == "shipway-https-redirect"]
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"]["port"] == 8443


def test_clouds_expose_the_gateway_through_a_load_balancer(eks_prod):
    [proxy] = eks_prod.kind("EnvoyProxy")
    assert proxy["spec"]["provider"]["kubernetes"]["envoyService"]["type"] == "LoadBalancer"


def test_zot_is_reached_through_the_gateway_with_upload_timeouts_sized_to_the_largest_blob(eks_prod):
    [route] = [r for r in eks_prod.kind("HTTPRoute") if r["metadata"]["namespace"] == registry.NAMESPACE]
    assert route["spec"]["hostnames"] == ["registry.ml.acme.example"]
    [rule] = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": registry.RELEASE,
                                    "port": registry.SERVICE_PORT}]
    # 64Gi at 8 MiB/s is 8192 s: 137 minutes, rounded up.
    assert rule["timeouts"] == {"request": "137m"}
    [policy] = eks_prod.kind("ClientTrafficPolicy")
    [target] = policy["spec"]["targetRefs"]
    listeners = {item["name"]: item for item in _the_gateway(eks_prod)["spec"]["listeners"]}
    assert target["sectionName"] == route["spec"]["parentRefs"][0]["sectionName"]
    assert listeners[target["sectionName"]]["allowedRoutes"]["namespaces"]["selector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": registry.NAMESPACE}
    assert policy["spec"]["timeout"]["http"]["requestReceivedTimeout"] == "137m"
    # Pods keep pulling in-cluster; CI pushes to the gateway's host.
    assert eks_prod.result.profile["registry"]["url"] == registry.url(eks_prod.blueprint)
    assert eks_prod.result.profile["registry"]["pushUrl"] == "registry.ml.acme.example"


def test_small_blobs_still_get_ten_minutes():
    blueprint = load_blueprint(REPO / "blueprints" / "kind-dev.yaml")
    small = blueprint.model_copy(update={"registry": blueprint.registry.model_copy(update={"max_blob_size": "1Mi"})})
    assert gateway.upload_timeout(small) == "10m"


def test_external_dns_publishes_only_the_gateway_domain(eks_prod, kind_dev):
    values = eks_prod.releases["external-dns"]["values"]
    assert values["sources"] == ["gateway-httproute"]
    assert values["domainFilters"] == ["ml.acme.example"] and values["provider"] == {"name": "aws"}
    assert values["txtOwnerId"] == eks_prod.blueprint.metadata.name
    assert "external-dns" not in kind_dev.releases


def test_argo_rollouts_loads_the_gateway_api_plugin_from_its_image(each_blueprint):
    controller = each_blueprint.releases["argo-rollouts"]["values"]["controller"]
    [plugin] = controller["trafficRouterPlugins"]
    assert plugin["name"] == "argoproj-labs/gatewayAPI" == catalog.ROLLOUTS_GATEWAY_PLUGIN
    [init] = controller["initContainers"]
    assert init["image"] == catalog.ROLLOUTS_GATEWAY_PLUGIN_IMAGE
    # The image keeps the binary at /bin/<name>; the controller reads the copy from the shared volume.
    source, destination = init["command"][1:]
    assert source == f"/bin/{serving.PLUGIN_BINARY}"
    assert plugin["location"] == f"file://{destination}"
    [mount] = controller["volumeMounts"]
    assert destination.startswith(mount["mountPath"] + "/") and mount["readOnly"] is True
    assert {v["name"] for v in controller["volumes"]} == {mount["name"]} == {m["name"] for m in init["volumeMounts"]}


def _blueprint(**gateway_fields) -> Blueprint:
    return Blueprint.model_validate({
        "metadata": {"name": "g"}, "cluster": {"kind": "kind"}, "gitops": {"enabled": False},
        "teams": [{"name": "t"}], "gateway": gateway_fields})


@pytest.mark.parametrize(("fields", "message"), [
    ({"host": "{model}.{env}.{domain}"}, "has no {team}"),
    ({"host": "api-{model}.{team}.{env}.{domain}"}, "inside a name"),
    ({"host": "{team}.{env}.{domain}"}, "{model} appears 0 times"),
    ({"host": "{model}.{team}.{env}.{domian}"}, "names domian"),
    ({"domain": "ml.example", "issuer": {"type": "acme", "email": "a@b.example", "solver": "http01"}},
     "only through DNS-01"),
    ({"domain": "ml.example", "issuer": {"type": "acme", "email": "a@b.example"}}, "has no DNS provider"),
    ({"issuer": {"type": "acme", "email": "a@b.example", "dns01": {"route53": {}}}}, "cannot certify the default"),
])
def test_gateway_settings_that_cannot_work_are_refused(fields, message):
    with pytest.raises(Violations, match=message.replace("{", r"\{").replace("}", r"\}")):
        try:
            _blueprint(**fields)
        except Exception as error:  # pydantic wraps the validator's error
            raise error.errors()[0]["ctx"]["error"] from None


def test_http01_works_when_models_are_told_apart_by_path():
    blueprint = _blueprint(domain="ml.example", host="{team}.{env}.{domain}", path="/{model}",
                           issuer={"type": "acme", "email": "a@b.example", "solver": "http01"})
    assert blueprint.route_host("t", "prod", "iris") == "t.prod.ml.example"
    assert blueprint.route_path("iris") == "/iris"
    # No wildcard, so HTTP-01 can prove the listener's one name.
    assert gateway.listener_host(blueprint, "t", "prod") == "t.prod.ml.example"


def test_without_the_gateway_nothing_of_it_is_installed():
    blueprint = _blueprint(enabled=False)
    layer = gateway.render(blueprint)
    assert not layer.objects and not layer.releases
    assert "trafficRouterPlugins" not in serving.rollouts_values(blueprint)["controller"]
    names = {policy["metadata"]["name"] for policy in tenancy.render(blueprint).objects
             if policy["kind"] == "NetworkPolicy"}
    assert "allow-gateway" not in names and "default-deny" in names
