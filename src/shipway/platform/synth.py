"""Offline synthesis: run the real Pulumi program under the SDK's mock engine and record what it registers.

Nothing reaches a cloud or a cluster. Inputs are recorded exactly as the engine would receive
them; secrets are masked, and outputs that only a cloud can compute are marked unknown.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from shipway.charts.cache import ChartCache
from shipway.charts.engine import ParseCache, default_parse_cache, release_input
from shipway.charts.platform import PlatformRender, kubernetes_version, render_platform, rendered_files
from shipway.errors import ShipwayError, missing_extra
from shipway.files import write_tree
from shipway.platform.program import CONFIG_NAMESPACE, secret_keys
from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint
from shipway.spec.blueprint import Blueprint, EksCluster
from shipway.yamlio import to_yaml

UNKNOWN = "<unknown: computed at deploy>"
SECRET = "<secret>"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
_REFERENCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PROJECT = "shipway"

# Outputs a cloud computes, which synth reports as unknown rather than inventing.
_COMPUTED = {
    "eks:index:Cluster": ("kubeconfig", "kubeconfigJson", "eksCluster", "core", "clusterSecurityGroupId"),
    "gcp:container/cluster:Cluster": ("endpoint", "selfLink"),
    "random:index/randomPassword:RandomPassword": ("result", "bcryptHash"),
    "aws:iam/role:Role": ("arn", "uniqueId"),
    "aws:sqs/queue:Queue": ("arn", "url"),
    "aws:cloudwatch/eventRule:EventRule": ("arn",),
}


class SynthError(ShipwayError):
    """The Pulumi program failed under the mock engine."""


@dataclass
class Registered:
    """One resource as the engine saw its registration."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    inputs: dict[str, Any]

    @property
    def layer(self) -> str:
        """The Shipway layer the resource belongs to, from its URN's type chain."""
        chain = self.urn.split("::")[2] if self.urn.count("::") >= 3 else ""
        for part in chain.split("$"):
            if part.startswith("shipway:") and part != "shipway:platform:Platform":
                return part.split(":")[1]
        return "platform" if self.type.startswith("shipway:platform") else "stack"


@dataclass
class SynthResult:
    """Everything a synth produced."""

    blueprint: Blueprint
    resources: list[Registered]
    profile: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    charts: PlatformRender | None = None

    def counts_by_layer(self) -> dict[str, int]:
        """How many resources each layer registered (the layer components themselves excluded)."""
        counts = Counter(resource.layer for resource in self.resources if resource.custom)
        return dict(sorted(counts.items()))


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping each registration's parent, provider and dependencies."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the engine's RPC name
        inputs = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
        if _has_reference(inputs):
            # The mock monitor would rehydrate references (e.g. a node group's cluster) on a
            # second event loop; the URN is all a plan needs.
            plain = _drop_references(inputs)
            request.object.Clear()
            request.object.update(plain)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(Registered(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                custom=request.custom, provider=request.provider.split("::")[-1] if request.provider else "",
                dependencies=sorted(request.dependencies), inputs=_clean(inputs)))
        return response



class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        # Echoed resource references would be rehydrated on another event loop; outputs never need them.
        outputs = {key: value for key, value in args.inputs.items() if not _is_reference(value)}
        for name in _COMPUTED.get(args.typ, ()):
            outputs[name] = UNKNOWN
        if args.typ == "gcp:container/cluster:Cluster":
            outputs["masterAuth"] = {"clusterCaCertificate": UNKNOWN}
        if args.typ == "random:index/randomBytes:RandomBytes":
            # Apply callbacks run under mocks (a bcrypt salt is decoded), so the bytes need their real shape.
            zeros = bytes(int(args.inputs.get("length", 0)))
            outputs.update({"base64": base64.b64encode(zeros).decode(), "hex": zeros.hex()})
        cloud = args.typ.split(":")[0] in ("aws", "eks", "gcp")
        return (UNKNOWN if cloud else f"{args.name}-id"), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            # Which zones a region offers is the cloud's answer; six cover any availabilityZones setting.
            return {"names": [f"{UNKNOWN} zone {index}" for index in range(6)], "zoneIds": [], "id": UNKNOWN}
        return {}


def _has_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get(_SECRET_SIG) == _REFERENCE_SIG or any(_has_reference(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_reference(item) for item in value)
    return False


def _drop_references(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _REFERENCE_SIG:
            return value.get("urn", "")
        return {key: _drop_references(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_drop_references(item) for item in value]
    return value


def _is_reference(value: Any) -> bool:
    if isinstance(value, pulumi.Resource):
        return True
    if isinstance(value, list):
        return any(_is_reference(item) for item in value)
    if isinstance(value, dict):
        return any(_is_reference(item) for item in value.values())
    return False


def _clean(value: Any) -> Any:
    """Mask secrets, mark unknowns, sort keys, and turn protobuf's whole-number doubles back into ints."""
    if isinstance(value, dict):
        if _SECRET_SIG in value:
            return SECRET
        # Sorted: protobuf Struct maps come back in an order that changes between processes.
        return {key: _clean(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == _UNKNOWN_SENTINEL:
        return UNKNOWN
    return value


_UNSET_SECRETS = frozenset({"kubeconfig", "registryPassword"})


def _placeholder_config(blueprint_path: Path, blueprint: Blueprint) -> dict[str, str]:
    config = {f"{CONFIG_NAMESPACE}:blueprint": str(blueprint_path.resolve())}
    if isinstance(blueprint.cluster, EksCluster):
        config["aws:region"] = blueprint.cluster.region  # as the stack config must set it
    for key in secret_keys(blueprint):
        # Left unset, as on a new stack: the kubeconfig comes from the local context, the password is generated.
        if key not in _UNSET_SECRETS:
            config[f"{CONFIG_NAMESPACE}:{key}"] = f"synth-placeholder-{key}"
    return config


def run_program(blueprint_path: str | Path, stack: str = "synth") -> SynthResult:
    """Run the stack program for a blueprint under mocks and return what it registered."""
    from shipway.platform.program import stack_program

    blueprint_path = Path(blueprint_path)
    blueprint = load_blueprint(blueprint_path)
    # A fresh loop per run: the mock engine's root stack binds its futures to the current loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = _Mocks()
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(_placeholder_config(blueprint_path, blueprint),
                                  [f"{CONFIG_NAMESPACE}:{key}" for key in secret_keys(blueprint)])
    try:
        _sync_await(run_pulumi_func(lambda: stack_program()))
        outputs = _stack_outputs()
    except ShipwayError:
        raise
    except Exception as error:  # the engine surfaces program failures as arbitrary exceptions
        missing = missing_extra(error)
        if missing is not None:
            raise missing from None
        raise SynthError(f"the Pulumi program failed under the mock engine: {error}") from error
    finally:
        # A loop left for the interpreter to collect at exit fails noisily; close it while we can.
        loop.close()
        asyncio.set_event_loop(None)
    resources = sorted(monitor.registered, key=lambda r: r.urn)
    return SynthResult(blueprint, resources, platform_profile(blueprint), outputs=outputs)


def _stack_outputs() -> dict[str, Any]:
    """What the program exported (`pulumi stack output`), secrets masked and cloud-computed values unknown."""
    from pulumi.runtime.settings import get_root_resource

    root = get_root_resource()
    exported = getattr(root, "outputs", None) or {}
    outputs = {}
    for name, value in exported.items():
        output = pulumi.Output.from_input(value)
        secret = _sync_await(output.is_secret())
        known = _sync_await(output.is_known())
        resolved = _sync_await(output.future()) if known else None
        outputs[name] = SECRET if secret else _clean(resolved) if known else UNKNOWN
    return dict(sorted(outputs.items()))


def plan_document(result: SynthResult) -> dict[str, Any]:
    """plan.json: every resource with type, name, parent, provider, dependencies and masked inputs."""
    plan = {
        "apiVersion": "shipway.dev/synth-plan/v1",
        "blueprint": result.blueprint.metadata.name,
        "note": f"Synthesised offline under Pulumi's mock engine; {UNKNOWN} marks what only a cloud computes.",
        "counts": result.counts_by_layer(),
        # The profile export is platform.json, written beside this file.
        "outputs": {name: "<platform.json>" if name == "profile" else value for name, value in result.outputs.items()},
        "resources": [
            {"type": r.type, "name": r.name, "urn": r.urn, "layer": r.layer, "parent": r.parent,
             "custom": r.custom, "provider": r.provider, "dependencies": r.dependencies, "inputs": r.inputs}
            for r in result.resources
        ],
    }
    if result.charts is not None:
        plan["charts"] = result.charts.summary()
    return plan


def kubernetes_objects(result: SynthResult) -> list[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object (not releases, not providers) with the layer that made it."""
    objects = []
    for r in result.resources:
        if not r.type.startswith("kubernetes:") or r.type.startswith(("kubernetes:helm", "pulumi:providers")):
            continue
        inputs = dict(r.inputs)
        head = {"apiVersion": inputs.pop("apiVersion"), "kind": inputs.pop("kind"),
                "metadata": inputs.pop("metadata", {})}
        objects.append((r.layer, {**head, **dict(sorted(inputs.items()))}))
    return objects


def releases(result: SynthResult) -> list[tuple[str, dict[str, Any]]]:
    """Every Helm release with chart, repo, version, namespace and values."""
    out = []
    for r in result.resources:
        if r.type != "kubernetes:helm.sh/v3:Release":
            continue
        inputs = r.inputs
        out.append((r.layer, {
            "name": inputs.get("name", r.name), "chart": inputs["chart"],
            "repo": inputs.get("repositoryOpts", {}).get("repo", inputs["chart"].rsplit("/", 1)[0]),
            "version": inputs["version"], "namespace": inputs.get("namespace", "default"),
            "values": inputs.get("values", {}),
            **({"skipCrds": True} if inputs.get("skipCrds") else {}),
        }))
    return out


def _layer_rank(layer: str) -> int:
    from shipway.platform import LAYERS

    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def layer_stem(layer: str) -> str:
    """A layer's file-name prefix: its rank in creation order, then its name."""
    return f"{_layer_rank(layer):02d}-{layer}"


def write(result: SynthResult, out_dir: str | Path) -> list[Path]:
    """Write plan.json, platform.json, manifests/, releases/ and rendered/, replacing out_dir as a whole."""
    files = {
        "plan.json": json.dumps(plan_document(result), indent=2, sort_keys=False) + "\n",
        "platform.json": json.dumps(result.profile, indent=2) + "\n",
    }
    for layer, obj in kubernetes_objects(result):
        meta = obj["metadata"]
        stem = "--".join([layer_stem(layer), obj["kind"].lower(),
                          meta.get("namespace", "_cluster"), meta["name"]])
        files[f"manifests/{stem}.yaml"] = to_yaml(obj)
    for layer, release in releases(result):
        files[f"releases/{layer_stem(layer)}--{release['name']}.yaml"] = to_yaml(release)
    if result.charts is not None:
        files.update(rendered_files(result.charts, layer_stem))
    result.files = write_tree(files, out_dir)
    return result.files


def render_charts(result: SynthResult, cache: ChartCache, parse_cache: ParseCache | None = None) -> PlatformRender:
    """Render every release of the synth through its chart in `cache`; the result goes into the synth's output."""
    inputs = [release_input(layer, release) for layer, release in releases(result)]
    result.charts = render_platform(inputs, cache, kubernetes_version(result.blueprint), parse_cache)
    return result.charts


def render_charts_if_cached(result: SynthResult, cache: Path | None) -> PlatformRender | None:
    """Render the synth's releases through the chart cache when that folder exists (None: not rendered)."""
    from shipway.charts.engine import default_parse_cache

    if cache is None or not cache.is_dir():
        return None
    return render_charts(result, ChartCache(cache), default_parse_cache())


def synth(blueprint_path: str | Path, out_dir: str | Path | None = None,
          charts: str | Path | None = None) -> SynthResult:
    """Synthesise a blueprint, rendering its releases through the charts in `charts` when given; write it
    when out_dir is given."""
    result = run_program(blueprint_path)
    if charts is not None:
        render_charts(result, ChartCache(charts), default_parse_cache())
    if out_dir is not None:
        write(result, out_dir)
    return result
