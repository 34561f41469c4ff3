"""Checks over the whole platform: Shipway's own objects and every object its charts render, together.

- schema: core kinds strictly against the target Kubernetes version's OpenAPI (kubernetes-validate),
  custom kinds against the CRDs the platform itself installs (from the charts, not a separate catalog);
- owners: no object is created by two owners (two releases, or a release and Shipway);
- scraping: every ServiceMonitor selects a Service that exists and has the named port (and not two
  Services of the same pods), every PodMonitor selects pods with the named port;
- pod security: every pod meets its namespace's Pod Security level, and every exception is needed;
- volumes: every pod mounts the volumes it declares and declares the ones it mounts.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from shipway.catalog import PROMETHEUS_RELEASE
from shipway.charts.objects import Identity, crd_scopes, group_of, identity

Obj = dict[str, Any]
SECRET = "<secret>"
UNKNOWN_PREFIX = "<unknown"


@dataclass(frozen=True)
class Owned:
    """One object of the platform with who creates it: `shipway <layer>` or `release <name>`."""

    owner: str
    obj: Obj
    namespace: str  # where it lands when it names none: the release's namespace; "" for Shipway's own
    source: str = ""


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the platform, named so a reader can find it."""

    check: str
    owner: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.owner}: {self.subject}: {self.message}"


def platform_objects(shipway: Iterable[tuple[str, Obj]], rendered: Iterable[Any]) -> list[Owned]:
    """Shipway's objects (layer, object) and every rendered release's objects, with their owners."""
    owned = [Owned(f"shipway {layer}", obj, "") for layer, obj in shipway]
    for release in rendered:
        owned += [Owned(f"release {release.release.name}", item.obj, release.release.namespace, item.source)
                  for item in release.items]
    return owned


def _crds(owned: list[Owned]) -> list[Obj]:
    return [o.obj for o in owned if o.obj.get("kind") == "CustomResourceDefinition"]


def identities(owned: list[Owned]) -> list[tuple[Identity, Owned]]:
    """Each object's identity once applied."""
    scopes = crd_scopes(_crds(owned))
    return [(identity(o.obj, o.namespace, scopes), o) for o in owned]


# --- schema ---------------------------------------------------------------------------------------------------


def _structural(schema: Any, root: bool = False) -> Any:
    """A CRD's OpenAPI v3 structural schema as strict JSON Schema: unknown fields are refused, as the API
    server's strict field validation refuses them, unless the schema preserves them."""
    if not isinstance(schema, dict):
        return schema
    out = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-") and key != "nullable"}
    for key in ("properties", "patternProperties", "definitions"):
        if key in out:
            out[key] = {name: _structural(value) for name, value in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _structural(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [_structural(item) for item in out[key]]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("x-kubernetes-embedded-resource") or root:
        out.setdefault("properties", {})
        for field, kind in (("apiVersion", "string"), ("kind", "string"), ("metadata", "object")):
            out["properties"].setdefault(field, {"type": kind})
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if out.get("type") == "object" and "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def crd_validators(crds: Iterable[Obj]) -> dict[tuple[str, str, str], Any]:
    """(group, version, kind) -> a JSON Schema validator, for every served version of every CRD."""
    import jsonschema

    validators = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema"))
            if version.get("served", True) and schema:
                key = (spec.get("group", ""), version.get("name", ""), (spec.get("names") or {}).get("kind", ""))
                validators[key] = jsonschema.Draft7Validator(_structural(schema, root=True))
    return validators


def _unmasked(obj: Obj) -> Obj:
    # Synth masks secret values as one opaque string; their shape is Pulumi's to check, not the schema's.
    if not any(obj.get(key) == SECRET for key in ("data", "stringData")):
        return obj
    clean = copy.copy(obj)
    for key in ("data", "stringData"):
        if clean.get(key) == SECRET:
            clean[key] = {"masked": "value"}
    return clean


def _path(error: Any) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top)"


@functools.lru_cache(maxsize=None)
def _core_validator(api_version: str, kind: str, version: str) -> Any:
    """kubernetes-validate's strict schema for one kind, built once (its own validate() reloads the
    multi-megabyte definitions on every call); None when Kubernetes serves no such kind."""
    import jsonschema
    import referencing
    from kubernetes_validate import utils

    # As kubernetes_validate.validate picks them: the newest schemas not newer than the version asked.
    schemas = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(version)][-1]
    folder = f"kubernetes-json-schema/v{schemas}-local-strict"
    stem = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{stem}.json", version)
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _core_verdict(obj: Obj, version: str) -> str:
    """The strict core verdict on one object: "" when valid, "no-schema", or the first error."""
    validator = _core_validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), version)
    if validator is None:
        return "no-schema"
    error = next(iter(sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))), None)
    return "" if error is None else f"{_path(error)}: {error.message}"


def schema_findings(owned: list[Owned], kubernetes_version: str) -> list[Finding]:
    """Every object against its schema: custom kinds against the platform's CRDs, the rest strict core."""
    validators = crd_validators(_crds(owned))
    findings = []
    for item in owned:
        obj = _unmasked(item.obj)
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        group, version = group_of(api_version), api_version.rpartition("/")[2]
        subject = f"{kind} {(obj.get('metadata') or {}).get('name')}"
        if kind == "NodePatch":
            continue  # a partial Node by design (labels and taints), applied with server-side apply
        validator = validators.get((group, version, kind))
        if validator is not None:
            errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
            findings += [Finding("schema", item.owner, subject, f"{_path(e)}: {e.message}") for e in errors[:5]
                         if not _is_unknown(e.instance)]
            continue
        verdict = _core_verdict(obj, kubernetes_version)
        if verdict == "no-schema":
            findings.append(Finding("schema", item.owner, subject, f"neither Kubernetes {kubernetes_version} nor "
                                    f"a CRD the platform installs serves {api_version} {kind}"))
        elif verdict:
            findings.append(Finding("schema", item.owner, subject, verdict))
    return findings


def _is_unknown(value: Any) -> bool:
    # What only a cloud computes is unknown offline; its type is the provider's to check.
    return isinstance(value, str) and value.startswith(UNKNOWN_PREFIX)


# --- owners ---------------------------------------------------------------------------------------------------


def owner_findings(owned: list[Owned]) -> list[Finding]:
    """Objects two owners create (or one owner twice): the second apply fails or they fight over it."""
    owners: dict[Identity, list[str]] = defaultdict(list)
    for who, item in identities(owned):
        owners[who].append(item.owner)
    return [Finding("owners", " and ".join(sorted(set(names))), str(who),
                    f"created {len(names)} times, by {', '.join(names)}")
            for who, names in sorted(owners.items()) if len(names) > 1]


# --- scraping -------------------------------------------------------------------------------------------------


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if ((operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and labels.get(key) in values)
                or (operator == "Exists" and not present) or (operator == "DoesNotExist" and present)):
            return False
    return True


def _in_namespaces(selector: Obj, own: str, namespace: str) -> bool:
    if selector.get("any"):
        return True
    names = selector.get("matchNames")
    return namespace in names if names else namespace == own


# Services that no platform object declares, which the cluster or an operator creates and ServiceMonitors
# select: the API server's own Service (Kubernetes creates default/kubernetes), and the kubelet Service the
# Prometheus operator keeps in kube-system (prometheus-operator pkg/kubelet; the stack names it
# <release>-kubelet by default).
CLUSTER_SERVICES: list[tuple[Identity, Obj]] = [
    (Identity("", "Service", "default", "kubernetes"),
     {"metadata": {"labels": {"component": "apiserver", "provider": "kubernetes"}},
      "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}),
    (Identity("", "Service", "kube-system", f"{PROMETHEUS_RELEASE}-kubelet"),
     {"metadata": {"labels": {"k8s-app": "kubelet", "app.kubernetes.io/name": "kubelet",
                              "app.kubernetes.io/managed-by": "prometheus-operator"}},
      "spec": {"ports": [{"name": "https-metrics", "port": 10250}, {"name": "http-metrics", "port": 10255},
                         {"name": "cadvisor", "port": 4194}]}}),
]


def _services(owned: list[Owned]) -> Iterator[tuple[Identity, Obj]]:
    yield from CLUSTER_SERVICES
    for who, item in identities(owned):
        if item.obj.get("kind") == "Service" and group_of(str(item.obj.get("apiVersion"))) == "":
            yield who, item.obj


def _monitors(owned: list[Owned], kind: str) -> Iterator[tuple[Identity, Owned, Obj]]:
    """The Prometheus operator's monitors of one kind, with their spec."""
    for who, item in identities(owned):
        if item.obj.get("kind") == kind and group_of(str(item.obj.get("apiVersion"))) == "monitoring.coreos.com":
            yield who, item, item.obj.get("spec") or {}


def service_monitor_findings(owned: list[Owned]) -> list[Finding]:
    """Every ServiceMonitor selects at least one Service that exists and carries each endpoint's port."""
    services = list(_services(owned))
    findings = []
    for who, item, spec in _monitors(owned, "ServiceMonitor"):
        chosen = [(svc_who, svc) for svc_who, svc in services
                  if _in_namespaces(spec.get("namespaceSelector") or {}, who.namespace, svc_who.namespace)
                  and _selects(spec.get("selector") or {}, (svc.get("metadata") or {}).get("labels") or {})]
        if not chosen:
            findings.append(Finding("scraping", item.owner, str(who),
                                    f"selects no Service (selector {json.dumps(spec.get('selector') or {})})"))
            continue
        twins = sorted(str(w) for w, svc in chosen if [(svc.get("spec") or {}).get("selector") for _, svc in chosen]
                 .count((svc.get("spec") or {}).get("selector")) > 1)
        if twins:
            findings.append(Finding("scraping", item.owner, str(who),
                                    f"scrapes the same pods twice, through {', '.join(twins)}"))
        for endpoint in spec.get("endpoints") or []:
            port = endpoint.get("port")
            target = endpoint.get("targetPort")
            ports = [p for _, svc in chosen for p in (svc.get("spec") or {}).get("ports") or []]
            if port is not None and not any(p.get("name") == port for p in ports):
                findings.append(Finding("scraping", item.owner, str(who),
                                        f"endpoint port {port!r} is not a port name of "
                                        f"{', '.join(str(w) for w, _ in chosen)}"))
            elif port is None and target is not None and not any(p.get("targetPort", p.get("port")) == target
                                                                  for p in ports):
                findings.append(Finding("scraping", item.owner, str(who),
                                        f"endpoint targetPort {target!r} is no target port of the selected Services"))
    return findings + pod_monitor_findings(owned)


def pod_monitor_findings(owned: list[Owned]) -> list[Finding]:
    """Every PodMonitor selects pods some workload runs, with a container port of each endpoint's name."""
    from shipway.charts.pod_security import pod_templates

    pods = [(who.namespace, meta, spec) for who, item in identities(owned) for meta, spec in pod_templates(item.obj)]
    findings = []
    for who, item, spec in _monitors(owned, "PodMonitor"):
        chosen = [pod_spec for namespace, meta, pod_spec in pods
                  if _in_namespaces(spec.get("namespaceSelector") or {}, who.namespace, namespace)
                  and _selects(spec.get("selector") or {}, meta.get("labels") or {})]
        if not chosen:
            findings.append(Finding("scraping", item.owner, str(who),
                                    f"selects no pods (selector {json.dumps(spec.get('selector') or {})})"))
            continue
        names = {port.get("name") for pod_spec in chosen for container in pod_spec.get("containers") or []
                 for port in container.get("ports") or []}
        findings += [Finding("scraping", item.owner, str(who), f"endpoint port {endpoint['port']!r} is no "
                             "container port name of the selected pods")
                     for endpoint in spec.get("podMetricsEndpoints") or []
                     if endpoint.get("port") is not None and endpoint["port"] not in names]
    return findings


# --- pod security ---------------------------------------------------------------------------------------------


def namespace_levels(owned: list[Owned]) -> dict[str, str]:
    """Each namespace the platform creates, with the Pod Security level it enforces (privileged when unlabelled)."""
    from shipway.charts.pod_security import ENFORCE

    return {str((o.obj.get("metadata") or {}).get("name")): ((o.obj.get("metadata") or {}).get("labels") or {})
            .get(ENFORCE, "privileged") for o in owned if o.obj.get("kind") == "Namespace"}


def pod_security_findings(owned: list[Owned], exceptions: dict[str, tuple[str, str]],
                          complete: bool = True) -> list[Finding]:
    """Every pod meets its namespace's Pod Security level; a namespace below restricted is an exception
    with a reason, and (when every release was rendered, so every pod is known) some pod there needs it."""
    from shipway.charts.pod_security import LEVELS, pod_templates, required_level, violations

    levels = namespace_levels(owned)
    needed: dict[str, str] = {}
    findings = []
    for who, item in identities(owned):
        for meta, spec in pod_templates(item.obj):
            # A namespace the platform does not create (kube-system) is not the platform's to label; the
            # platform's pods there are held to its default, restricted.
            level = levels.get(who.namespace, "restricted")
            broken = violations(meta, spec, level)
            if broken:
                enforces = "enforces" if who.namespace in levels else "is not the platform's, which holds its pods to"
                findings.append(Finding("pod-security", item.owner, str(who),
                                        f"namespace {who.namespace} {enforces} {level}, which refuses: "
                                        + "; ".join(broken)))
            need = required_level(meta, spec)
            if LEVELS.index(need) < LEVELS.index(needed.get(who.namespace, "restricted")):  # less restricted
                needed[who.namespace] = need
    for name, level in sorted(levels.items()):
        if level == "restricted":
            continue
        if name not in exceptions or exceptions[name][0] != level:
            findings.append(Finding("pod-security", "shipway", f"Namespace {name}",
                                    f"enforces {level}, which POD_SECURITY_EXCEPTIONS does not list with a reason"))
        elif complete and needed.get(name, "restricted") != level:
            findings.append(Finding("pod-security", "shipway", f"Namespace {name}",
                                    f"enforces {level}, but its pods need only {needed.get(name, 'restricted')}"))
    return findings


def check_platform(shipway: Iterable[tuple[str, Obj]], platform: Any,
                   exceptions: dict[str, tuple[str, str]]) -> list[Finding]:
    """Every check over Shipway's objects and a PlatformRender (the CRDs of releases it could not render too)."""
    owned = platform_objects(shipway, [*platform.rendered, *platform.crds_only])
    return [*schema_findings(owned, platform.kubernetes_version), *owner_findings(owned),
            *service_monitor_findings(owned), *pod_security_findings(owned, exceptions, platform.complete),
            *volume_findings(owned)]


# --- volumes --------------------------------------------------------------------------------------------------


def volume_findings(owned: list[Owned]) -> list[Finding]:
    """Every pod mounts what it declares and declares what it mounts: a list value that replaces a chart's
    default list of mounts leaves the chart's volume unmounted, and its files missing."""
    from shipway.charts.pod_security import pod_templates

    findings = []
    for who, item in identities(owned):
        if (item.obj.get("spec") or {}).get("replicas") == 0:
            continue  # runs no pods: a template another controller copies (fake-gpu-operator's per-node exporter)
        for _, spec in pod_templates(item.obj):
            declared = {volume.get("name") for volume in spec.get("volumes") or []}
            containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
            mounted = {mount.get("name") for c in containers for mount in c.get("volumeMounts") or []}
            mounted |= {device.get("name") for c in containers for device in c.get("volumeDevices") or []}
            templates = {(claim.get("metadata") or {}).get("name")
                         for claim in (item.obj.get("spec") or {}).get("volumeClaimTemplates") or []}
            if declared - mounted:
                findings.append(Finding("volumes", item.owner, str(who),
                                        f"declares volumes no container mounts: {sorted(declared - mounted)}"))
            if mounted - declared - templates:
                findings.append(Finding("volumes", item.owner, str(who),
                                        f"mounts volumes it does not declare: {sorted(mounted - declared - templates)}"))
    return findings
