"""The gateway layer: cert-manager, Envoy Gateway (with the Gateway API CRDs), one shared Gateway, external-dns.

Every model and the registry are reached through the one Gateway. It has an HTTPS listener per team and
environment, whose wildcard (or exact) host only that team's namespace may attach routes to, one for the
registry, and an HTTP listener that redirects to HTTPS (and answers ACME HTTP-01 challenges).
"""

from __future__ import annotations

import math

from shipway import catalog
from shipway.render import registry
from shipway.render.common import Obj, deep_merge, metadata, namespace
from shipway.render.layer import LayerRender, Release
from shipway.spec.base import quantity_value
from shipway.spec.blueprint import AcmeIssuer, Blueprint, EksCluster, ZotRegistry

NAMESPACE = "envoy-gateway-system"
CERT_MANAGER_NAMESPACE = "cert-manager"
EXTERNAL_DNS_NAMESPACE = "external-dns"
GATEWAY = "shipway"
GATEWAY_CLASS = "shipway"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
ISSUER = "shipway-gateway"
SELF_SIGNED_ISSUER = "shipway-selfsigned"
CA_SECRET = "shipway-gateway-ca"
HTTP_LISTENER = "http"
REGISTRY_LISTENER = "https-registry"
HTTP_PORT = 80
HTTPS_PORT = 443
# On kind the Envoy Service is a NodePort on these ports; `shipway kind-config` maps them to 127.0.0.1.
KIND_NODE_PORTS = {HTTP_PORT: 30080, HTTPS_PORT: 30443}
# Envoy streams request bodies to zot unbuffered and caps no body size; what bounds an upload is time.
# The registry's timeouts carry a blob of registry.maxBlobSize at this rate or faster.
MIN_UPLOAD_BYTES_PER_SECOND = 8 * 2**20
MIN_UPLOAD_TIMEOUT_MINUTES = 10
GATEWAY_API_GROUP = "gateway.networking.k8s.io"


def team_listener(team: str, env: str) -> str:
    """The name of the HTTPS listener a team's routes in one environment attach to."""
    return f"https-{team}-{env}"


def listener_host(blueprint: Blueprint, team: str, env: str) -> str:
    """A listener's hostname: the route host with {model} as the wildcard label."""
    return blueprint.route_host(team, env, "*")


def _namespace_selector(name: str) -> Obj:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


def _https_listener(name: str, hostname: str, route_namespace: str) -> Obj:
    return {
        "name": name,
        "hostname": hostname,
        "port": HTTPS_PORT,
        "protocol": "HTTPS",
        "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": f"{name}-tls"}]},
        "allowedRoutes": {"namespaces": {"from": "Selector", "selector": _namespace_selector(route_namespace)},
                          "kinds": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute"}]},
    }


def listeners(blueprint: Blueprint) -> list[Obj]:
    """HTTP (redirect and ACME), the registry's HTTPS listener, and one per team and environment."""
    found: list[Obj] = [{"name": HTTP_LISTENER, "port": HTTP_PORT, "protocol": "HTTP",
                         "allowedRoutes": {"namespaces": {"from": "Same"}}}]
    if isinstance(blueprint.registry, ZotRegistry):
        found.append(_https_listener(REGISTRY_LISTENER, blueprint.registry_host, registry.NAMESPACE))
    for team in blueprint.teams:
        for env, ns in blueprint.namespaces[team.name].items():
            found.append(_https_listener(team_listener(team.name, env), listener_host(blueprint, team.name, env), ns))
    return found


def gateway(blueprint: Blueprint) -> Obj:
    """The shared Gateway."""
    return {"apiVersion": f"{GATEWAY_API_GROUP}/v1", "kind": "Gateway", "metadata": metadata(GATEWAY, NAMESPACE),
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners(blueprint)}}


def envoy_proxy(blueprint: Blueprint) -> Obj:
    """How Envoy Gateway runs the proxies: a NodePort Service on kind, a LoadBalancer with two replicas elsewhere."""
    if blueprint.cluster.kind == "kind":
        ports = [{"port": port, "nodePort": node_port} for port, node_port in sorted(KIND_NODE_PORTS.items())]
        kubernetes: Obj = {"envoyService": {"type": "NodePort", "patch": {
            "type": "StrategicMerge", "value": {"spec": {"ports": ports}}}}}
    else:
        kubernetes = {"envoyService": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
                      "envoyDeployment": {"replicas": 2}}
    return {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "EnvoyProxy",
            "metadata": metadata(GATEWAY, NAMESPACE),
            "spec": {"provider": {"type": "Kubernetes", "kubernetes": kubernetes}}}


def gateway_class() -> Obj:
    """The GatewayClass Envoy Gateway serves, with Shipway's EnvoyProxy settings."""
    return {"apiVersion": f"{GATEWAY_API_GROUP}/v1", "kind": "GatewayClass", "metadata": metadata(GATEWAY_CLASS),
            "spec": {"controllerName": CONTROLLER_NAME,
                     "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": GATEWAY,
                                       "namespace": NAMESPACE}}}


def _issuer_ref(name: str) -> Obj:
    return {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": name}


def issuers(blueprint: Blueprint) -> list[Obj]:
    """The ClusterIssuer the listeners' certificates come from (with its private CA when self-signed)."""
    issuer = blueprint.gateway.issuer
    if isinstance(issuer, AcmeIssuer):
        if issuer.solver == "dns01":
            solver: Obj = {"dns01": dict(issuer.dns01)}
        else:
            parent = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY, "namespace": NAMESPACE,
                      "sectionName": HTTP_LISTENER}
            solver = {"http01": {"gatewayHTTPRoute": {"parentRefs": [parent]}}}
        return [{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": metadata(ISSUER),
                 "spec": {"acme": {"email": issuer.email, "server": issuer.server,
                                   "privateKeySecretRef": {"name": f"{ISSUER}-acme-account"},
                                   "solvers": [solver]}}}]
    return [
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": metadata(SELF_SIGNED_ISSUER),
         "spec": {"selfSigned": {}}},
        # A ClusterIssuer's CA secret lives in cert-manager's own namespace (its cluster resource namespace).
        {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": metadata(CA_SECRET, CERT_MANAGER_NAMESPACE),
         "spec": {"isCA": True, "commonName": f"{blueprint.metadata.name} gateway CA", "secretName": CA_SECRET,
                  "duration": "87600h", "privateKey": {"algorithm": "ECDSA", "size": 256},
                  "issuerRef": _issuer_ref(SELF_SIGNED_ISSUER)}},
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": metadata(ISSUER),
         "spec": {"ca": {"secretName": CA_SECRET}}},
    ]


def certificates(blueprint: Blueprint) -> list[Obj]:
    """One Certificate per HTTPS listener, into the Secret the listener names."""
    found = []
    for listener in listeners(blueprint):
        if listener["protocol"] != "HTTPS":
            continue
        [ref] = listener["tls"]["certificateRefs"]
        found.append({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                      "metadata": metadata(ref["name"], NAMESPACE),
                      "spec": {"secretName": ref["name"], "dnsNames": [listener["hostname"]],
                               "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                               "issuerRef": _issuer_ref(ISSUER)}})
    return found


def https_redirect(blueprint: Blueprint) -> Obj:
    """Plain HTTP answers with a redirect to HTTPS (on kind, to the HTTPS port kind-config maps)."""
    redirect: Obj = {"scheme": "https", "statusCode": 301}
    cluster = blueprint.cluster
    if cluster.kind == "kind":
        redirect["port"] = cluster.https_port
    return {"apiVersion": f"{GATEWAY_API_GROUP}/v1", "kind": "HTTPRoute",
            "metadata": metadata("shipway-https-redirect", NAMESPACE),
            "spec": {"parentRefs": [{"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY,
                                     "sectionName": HTTP_LISTENER}],
                     "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]}]}}


def upload_timeout(blueprint: Blueprint) -> str:
    """How long one registry request may take: a registry.maxBlobSize blob at the minimum upload rate."""
    registry = blueprint.registry
    assert isinstance(registry, ZotRegistry)
    seconds = quantity_value(registry.max_blob_size) / MIN_UPLOAD_BYTES_PER_SECOND
    return f"{max(MIN_UPLOAD_TIMEOUT_MINUTES, math.ceil(seconds / 60))}m"


def registry_route(blueprint: Blueprint) -> list[Obj]:
    """zot through the Gateway for CI pushes: its HTTPRoute, and the listener's upload timeout."""
    timeout = upload_timeout(blueprint)
    route = {
        "apiVersion": f"{GATEWAY_API_GROUP}/v1", "kind": "HTTPRoute",
        "metadata": metadata(registry.RELEASE, registry.NAMESPACE),
        "spec": {
            "parentRefs": [{"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY, "namespace": NAMESPACE,
                            "sectionName": REGISTRY_LISTENER}],
            "hostnames": [blueprint.registry_host],
            "rules": [{"backendRefs": [{"group": "", "kind": "Service", "name": registry.RELEASE,
                                        "port": registry.SERVICE_PORT}],
                       # Envoy's own route timeout is 15 s, far too short for a model file.
                       "timeouts": {"request": timeout}}],
        },
    }
    # The client must deliver the whole request within the same budget; a stalled upload ends there.
    client_policy = {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "ClientTrafficPolicy",
        "metadata": metadata("shipway-registry-uploads", NAMESPACE),
        "spec": {"targetRefs": [{"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY,
                                 "sectionName": REGISTRY_LISTENER}],
                 "timeout": {"http": {"requestReceivedTimeout": timeout}}},
    }
    return [route, client_policy]


def cert_manager_values(blueprint: Blueprint) -> Obj:
    """cert-manager with its CRDs; with the gateway on, it also solves HTTP-01 through Gateway API routes."""
    values: Obj = {"crds": {"enabled": True}}
    if blueprint.gateway.enabled:
        values["config"] = {"apiVersion": "controller.config.cert-manager.io/v1alpha1",
                            "kind": "ControllerConfiguration", "enableGatewayAPI": True}
    return values


def external_dns_values(blueprint: Blueprint) -> Obj:
    """external-dns publishing the hosts of routes attached to the Gateway, only under the gateway's domain."""
    external = blueprint.gateway.external_dns
    assert external is not None
    values: Obj = {"provider": {"name": external.provider}, "sources": ["gateway-httproute"],
                   "domainFilters": [blueprint.gateway_domain], "policy": "upsert-only", "registry": "txt",
                   "txtOwnerId": blueprint.metadata.name}
    if external.provider == "aws" and blueprint.gateway.hosted_zone_ids:
        # Only the zones its IAM role may change; Route53 is global, but the AWS SDK still needs a region.
        values["extraArgs"] = {"zone-id-filter": list(blueprint.gateway.hosted_zone_ids)}
        if isinstance(blueprint.cluster, EksCluster):
            values["env"] = [{"name": "AWS_DEFAULT_REGION", "value": blueprint.cluster.region}]
    return deep_merge(values, external.values)


def needs_cert_manager(blueprint: Blueprint) -> bool:
    """cert-manager serves the gateway's certificates and KServe's webhooks."""
    return blueprint.gateway.enabled or blueprint.serving.kserve


def render(blueprint: Blueprint) -> LayerRender:
    """cert-manager when anything needs it; with the gateway on, Envoy Gateway, the Gateway and its routes."""
    layer = LayerRender()
    if needs_cert_manager(blueprint):
        layer.namespaces.append(namespace(CERT_MANAGER_NAMESPACE))
        layer.releases.append(Release("cert-manager", catalog.CERT_MANAGER, CERT_MANAGER_NAMESPACE,
                                      cert_manager_values(blueprint)))
    if not blueprint.gateway.enabled:
        return layer
    layer.namespaces.append(namespace(NAMESPACE))
    layer.releases.append(Release("envoy-gateway", catalog.ENVOY_GATEWAY, NAMESPACE,
                                  deep_merge({}, blueprint.gateway.values)))
    if blueprint.gateway.external_dns is not None:
        layer.namespaces.append(namespace(EXTERNAL_DNS_NAMESPACE))
        layer.releases.append(Release("external-dns", catalog.EXTERNAL_DNS, EXTERNAL_DNS_NAMESPACE,
                                      external_dns_values(blueprint)))
    layer.objects += issuers(blueprint)
    layer.objects += [envoy_proxy(blueprint), gateway_class(), gateway(blueprint), *certificates(blueprint),
                      https_redirect(blueprint)]
    if isinstance(blueprint.registry, ZotRegistry):
        layer.objects += registry_route(blueprint)
    return layer
