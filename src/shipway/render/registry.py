"""The OCI registry: zot in the cluster or an external one, and its pull secret in every team namespace."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shipway import catalog
from shipway.render.common import Obj, deep_merge, namespace, service_monitor
from shipway.render.layer import LayerRender, Release
from shipway.spec.blueprint import Blueprint, ExternalRegistry, ZotRegistry

NAMESPACE = "shipway-registry"
SERVICE_PORT = 5000
RELEASE = "zot"
# The dockerconfigjson Secret in every team namespace, for zot and external registries alike: model pods
# pull artifacts (and images) with it. The platform profile names it, so delivery never guesses.
PULL_SECRET = "shipway-registry"
# The in-cluster zot's identities: one admin for the platform, and per team a read-only pull identity
# (the team's namespaces and init containers) and a push identity (the team's CI), each on <team>/**.
ADMIN_USERNAME = "shipway-admin"
# The identity Prometheus scrapes zot's /metrics as: with htpasswd on, zot refuses anonymous metrics
# reads unless accessControl.metrics names who may read (zot pkg/api/authz.go, MetricsAuthzHandler).
METRICS_USERNAME = "shipway-metrics"
METRICS_SECRET = "shipway-zot-metrics"
# On kind, nodes reach zot through this NodePort (the containerd mirror in the kind config).
KIND_NODE_PORT = 30500
READ, CREATE, UPDATE, DELETE = "read", "create", "update", "delete"
# What each kind of identity may do in zot (zot's "update" is moving a tag; "delete" is left to the admin).
ACTIONS = {"admin": [READ, CREATE, UPDATE, DELETE], "push": [READ, CREATE, UPDATE], "pull": [READ]}


@dataclass(frozen=True)
class Identity:
    """One registry user: who uses it, and on which repositories it may do what."""

    username: str
    access: str
    team: str | None = None

    @property
    def repositories(self) -> str:
        """The zot repository glob this identity is scoped to."""
        return "**" if self.team is None else f"{self.team}/**"


def owning_team(repository: str, teams: Iterable[str]) -> str | None:
    """The team whose identities zot grants this repository, if any: `<team>/**` matches `<team>` itself and
    every repository under it (doublestar), and wins over `**` as the longer pattern."""
    first = repository.split("/")[0]
    return next((team for team in teams if team == first), None)


def url(blueprint: Blueprint) -> str:
    """The registry address pods and pushes use."""
    if isinstance(blueprint.registry, ExternalRegistry):
        return blueprint.registry.url
    return f"{RELEASE}.{NAMESPACE}.svc.cluster.local:{SERVICE_PORT}"


def pull_identity(team: str) -> Identity:
    """The read-only identity of a team's namespaces and init containers."""
    return Identity(f"{team}-pull", "pull", team)


def push_identity(team: str) -> Identity:
    """The identity a team's CI pushes with, on that team's repositories only."""
    return Identity(f"{team}-push", "push", team)


def identities(blueprint: Blueprint) -> list[Identity]:
    """Every zot user: the admin and the metrics reader first, then each team's pull and push identities."""
    found = [Identity(ADMIN_USERNAME, "admin"), Identity(METRICS_USERNAME, "metrics")]
    for team in blueprint.teams:
        found += [pull_identity(team.name), push_identity(team.name)]
    return found


_STANDARD_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT_BASE64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
BCRYPT_COST = 10
SALT_BYTES = 16


def htpasswd_line(user: str, password: str, salt_base64: str) -> str:
    """An htpasswd line: bcrypt of the password with a random salt kept in the stack's state.

    The salt comes from a random resource created once (random.RandomBytes), never from the
    password, so a guess costs a full bcrypt; it stays the same on every `pulumi up`, so an
    unchanged password gives an unchanged line and zot does not roll.
    """
    import bcrypt

    raw = base64.b64decode(salt_base64)
    if len(raw) != SALT_BYTES:
        raise ValueError(f"a bcrypt salt is {SALT_BYTES} random bytes, got {len(raw)}")
    salt = base64.b64encode(raw).decode()[:22].translate(str.maketrans(_STANDARD_BASE64, _BCRYPT_BASE64))
    digest = bcrypt.hashpw(password.encode()[:72], f"$2b${BCRYPT_COST:02d}${salt}".encode()).decode()
    return f"{user}:{digest}\n"


def server(blueprint: Blueprint) -> str:
    """The registry host (and port) credentials are keyed by in a docker config."""
    return url(blueprint).split("/")[0]


def username(blueprint: Blueprint, team: str) -> str:
    """The user a team's model pulls authenticate as: its pull identity, or the external registry's user."""
    reg = blueprint.registry
    return reg.username if isinstance(reg, ExternalRegistry) else pull_identity(team).username


def zot_config(registry: ZotRegistry, users: list[Identity], anonymous_read: bool) -> Obj:
    """zot's config.json: dedupe, garbage collection, htpasswd auth, per-team access control, metrics.

    zot grants by the longest matching repository glob, so `<team>/**` overrides `**` for a team's
    models; nobody but the admin (adminPolicy) may do anything elsewhere, and no one anonymously
    reads a team's models. On kind, `**` stays anonymously readable for the node's image mirror.
    """
    repositories: Obj = {"**": {"policies": [], "defaultPolicy": [],
                                "anonymousPolicy": [READ] if anonymous_read else []}}
    for user in users:
        if user.team is None:
            continue
        entry = repositories.setdefault(user.repositories, {"policies": [], "defaultPolicy": [],
                                                            "anonymousPolicy": []})
        entry["policies"].append({"users": [user.username], "actions": ACTIONS[user.access]})
    admins = [user.username for user in users if user.access == "admin"]
    return {
        "distSpecVersion": "1.1.1",
        "storage": {"rootDirectory": "/var/lib/registry", "dedupe": registry.dedupe, "gc": True,
                    "gcDelay": "1h", "gcInterval": "24h"},
        "http": {
            "address": "0.0.0.0",
            "port": str(SERVICE_PORT),
            "auth": {"htpasswd": {"path": "/secret/htpasswd"}},
            "accessControl": {"repositories": repositories,
                              "adminPolicy": {"users": admins, "actions": ACTIONS["admin"]},
                              "metrics": {"users": [user.username for user in users if user.access == "metrics"]}},
        },
        "log": {"level": "info"},
        "extensions": {"metrics": {"enable": True, "prometheus": {"path": "/metrics"}},
                       "search": {"enable": True}, "scrub": {"enable": True, "interval": "24h"}},
    }


def zot_values(blueprint: Blueprint, htpasswd: Any) -> Obj:
    """Values for the zot chart; htpasswd may be a Pulumi secret output.

    On kind, images are read anonymously through a NodePort so containerd's mirror needs no
    credentials; everywhere else every request authenticates.
    """
    registry = blueprint.registry
    assert isinstance(registry, ZotRegistry)
    on_kind = blueprint.cluster.kind == "kind"
    pvc: Obj = {"create": True, "accessModes": ["ReadWriteOnce"], "storage": registry.storage_size}
    if registry.storage_class:
        pvc["storageClassName"] = registry.storage_class
    values: Obj = {
        "persistence": True,
        "pvc": pvc,
        "service": ({"type": "NodePort", "port": SERVICE_PORT, "nodePort": KIND_NODE_PORT} if on_kind
                    else {"type": "ClusterIP", "port": SERVICE_PORT}),
        "mountConfig": True,
        "configFiles": {"config.json": json.dumps(zot_config(registry, identities(blueprint), on_kind), indent=2,
                                                  sort_keys=True)},
        "mountSecret": True,
        "secretFiles": {"htpasswd": htpasswd},
        # A StatefulSet names its governing Service (spec.serviceName, required); the chart sets it only
        # with the headless Service on.
        "serviceHeadless": {"enabled": True},
        "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                               "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    }
    return deep_merge(values, registry.values)


def zot_pod_monitor() -> Obj:
    """A PodMonitor for zot's metrics extension, scraping as the metrics user, labelled for the Prometheus stack.

    A PodMonitor, not a ServiceMonitor: zot's Service and its headless twin carry the same labels and port,
    so a ServiceMonitor would scrape every pod twice. The chart's own ServiceMonitor takes no labels.
    """
    monitor = service_monitor("shipway-zot", NAMESPACE, {"app.kubernetes.io/name": RELEASE,
                                                        "app.kubernetes.io/instance": RELEASE}, "zot")
    endpoint = {**monitor["spec"].pop("endpoints")[0],
                "basicAuth": {"username": {"name": METRICS_SECRET, "key": "username"},
                              "password": {"name": METRICS_SECRET, "key": "password"}}}
    return {**monitor, "kind": "PodMonitor", "spec": {**monitor["spec"], "podMetricsEndpoints": [endpoint]}}


def metrics_secret(password: Any) -> Obj:
    """The metrics user's credentials for Prometheus; the password may be a Pulumi secret output."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
            "metadata": {"name": METRICS_SECRET, "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "shipway"}},
            "stringData": {"username": METRICS_USERNAME, "password": password}}


def pull_secret(namespace_name: str, config_json: Any) -> Obj:
    """A dockerconfigjson pull secret; the config may be a Pulumi secret output."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": PULL_SECRET, "namespace": namespace_name,
                     "labels": {"app.kubernetes.io/managed-by": "shipway"}},
        "stringData": {".dockerconfigjson": config_json},
    }


def docker_config_json(server: str, username: str, password: str) -> str:
    """The .dockerconfigjson content for one registry."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {server: {"username": username, "password": password, "auth": token}}},
                      sort_keys=True)


def render(blueprint: Blueprint, htpasswd: Any, metrics_password: Any = "") -> LayerRender:
    """zot with its namespace (for an external registry, nothing of its own: team pull secrets live with
    tenancy), and the node model cache unless the blueprint turns it off.

    metrics_password is the metrics identity's password (a Pulumi secret output on a stack).
    """
    from shipway.render import node_cache

    namespaces, objects = node_cache.render(blueprint)
    if isinstance(blueprint.registry, ZotRegistry):
        return LayerRender(namespaces=[namespace(NAMESPACE), *namespaces],
                           releases=[Release(RELEASE, catalog.ZOT, NAMESPACE, zot_values(blueprint, htpasswd))],
                           objects=[metrics_secret(metrics_password), zot_pod_monitor(), *objects])
    return LayerRender(namespaces=namespaces, objects=objects)
