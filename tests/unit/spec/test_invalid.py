"""Bad blueprints fail with file:line:column, the field path, a message that says what was wrong, and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipway.errors import SpecError
from shipway.spec import load_blueprint

VALID = """\
metadata:
  name: dev
cluster:
  kind: kind
nodePools:
  - name: gpu
    gpu: {model: l4, count: 2}
  - name: big
    gpu: {model: a100-80gb, count: 1}
gitops:
  repoUrl: https://example.com/gitops.git
teams:
  - name: fraud
    quota: {gpus: 2}
"""

# (id, yaml text, line, path fragment, message fragment)
GKE = """\
metadata: {name: prod}
cluster:
  kind: gke
  project: acme-ml-prod
  region: europe-west4
  zones: [europe-west4-a, europe-west4-b]
nodePools:
  - {name: sys, role: system, instanceType: e2-standard-4, minSize: 2, maxSize: 4}
  - name: l4
    instanceType: g2-standard-8
    gpu: {model: l4}
    maxSize: 1
gitops: {enabled: false}
"""

CASES = [
    ("typo-top-level", VALID.replace("teams:", "teamz:"), 12, "teamz", 'did you mean "teams"'),
    ("typo-nested", VALID.replace("quota: {gpus: 2}", "quota: {gpu: 2}"), 14, "teams[0].quota.gpu", '"gpus"'),
    ("typo-pool", VALID.replace("    gpu: {model: l4", "    gpuu: {model: l4"), 7, "nodePools[0].gpuu", '"gpu"'),
    ("wrong-type-int", VALID.replace("count: 2}", "count: two}"), 7, "nodePools[0].gpu.count", "integer"),
    ("wrong-type-list", VALID.replace("nodePools:\n", "nodePools: gpu\n", 1).split("  - name: gpu")[0]
     + "gitops:\n  repoUrl: https://example.com/g.git\n", 5, "nodePools", "list"),
    ("wrong-type-bool", VALID + "gpuStack:\n  dcgmExporter: maybe\n", 16, "gpuStack.dcgmExporter", "boolean"),
    ("missing-name", VALID.replace("  name: dev\n", "  description: x\n"), 2, "metadata.name", "missing"),
    ("missing-cluster", VALID.replace("cluster:\n  kind: kind\n", ""), 1, "cluster", "missing"),
    ("unknown-cluster-kind", VALID.replace("kind: kind", "kind: aks"), 4, "cluster", "eks"),
    ("cluster-kind-missing", VALID.replace("  kind: kind\n", "  region: x\n"), 4, "cluster",
     "add `kind:` with one of: kind, existing, eks, gke"),
    ("node-cache-share-too-large", VALID + "registry: {type: zot, nodeCache: {maxSize: 60%}}\n", 15,
     "registry.nodeCache.maxSize", "from 1% to 50%"),
    ("node-cache-bytes-over-half-a-disk", GKE + "registry: {type: zot, nodeCache: {maxSize: 80Gi}}\n", 14,
     "registry.nodeCache.maxSize", "raise nodePools[1].diskSizeGiB to at least 160"),
    ("registry-type-missing", VALID + "registry: {storageSize: 10Gi}\n", 15, "registry",
     "add `type:` with one of: zot, external"),
    ("eks-missing-region", VALID.replace("kind: kind", "kind: eks"), 4, "cluster.region", "missing"),
    ("eks-bad-region", VALID.replace("kind: kind", "kind: eks\n  region: Europe"), 5, "cluster.region", "pattern"),
    ("not-dns-team", VALID.replace("name: fraud", "name: Fraud_Team"), 13, "teams[0].name", "DNS-1123"),
    ("not-dns-pool", VALID.replace("name: gpu\n", "name: gpu.pool\n"), 6, "nodePools[0].name", "DNS-1123"),
    ("unknown-gpu-model", VALID.replace("model: l4", "model: rtx4090"), 7, "nodePools[0].gpu.model", "Known GPU models"),
    ("huge-number", VALID.replace("count: 2}", "count: 99999999999999999999999}"), 7, "nodePools[0].gpu.count", "16"),
    ("negative", VALID.replace("quota: {gpus: 2}", "quota: {gpus: -1}"), 14, "teams[0].quota.gpus", "0"),
    ("quota-over-capacity", VALID.replace("quota: {gpus: 2}", "quota: {gpus: 9}"), 14, "teams[0].quota.gpus",
     "hold at most 3"),
    ("team-unknown-env", VALID + "    environments: [qa]\n", 15, "teams[0].environments[0]", '"qa"'),
    ("team-unknown-pool", VALID + "    gpuPools: [h100]\n", 15, "teams[0].gpuPools[0]", 'no GPU pool named "h100"'),
    ("mig-needs-operator", VALID + "gpuStack:\n  mode: device-plugin\n  sharing: {strategy: mig, profile: all-1g.10gb}\n",
     16, "gpuStack.mode", "MIG sharing needs the GPU Operator"),
    ("mig-on-l4", VALID + "gpuStack:\n  sharing: {strategy: mig, pools: [gpu]}\n", 16, "gpuStack.sharing.pools[0]",
     "do not support MIG"),
    ("mig-bad-profile", VALID + "gpuStack:\n  sharing: {strategy: mig, profile: all-9g.99gb}\n", 16,
     "gpuStack.sharing.profile", "does not exist on a100-80gb"),
    ("mig-single-balanced", VALID + "gpuStack:\n  sharing: {strategy: mig, migStrategy: single, profile: all-balanced}\n",
     16, "gpuStack.sharing.profile", "single strategy cannot"),
    ("eks-vpc-host-bits", VALID.replace("kind: kind", "kind: eks\n  region: eu-west-1\n  network: {vpcCidr: 10.0.0.1/16}"),
     6, "cluster.network.vpcCidr", "not an IPv4 network"),
    ("eks-vpc-bad-octet", VALID.replace("kind: kind", "kind: eks\n  region: eu-west-1\n  network: {vpcCidr: 300.0.0.0/16}"),
     6, "cluster.network.vpcCidr", "not an IPv4 network"),
    ("eks-vpc-too-small", VALID.replace("kind: kind", "kind: eks\n  region: eu-west-1\n  network: {vpcCidr: 10.0.0.0/27}"),
     6, "cluster.network.vpcCidr", "/16 to /24"),
    ("tolerations-miss-taint", VALID + "gpuStack:\n  tolerations:\n    - {key: other, operator: Exists}\n", 17,
     "gpuStack.tolerations", "no toleration matches taint nvidia.com/gpu"),
    ("min-over-max", VALID.replace("    gpu: {model: l4, count: 2}\n", "    gpu: {model: l4, count: 2}\n    minSize: 3\n"),
     8, "nodePools[0].minSize", "greater than maxSize"),
    ("duplicate-pool", VALID.replace("name: big", "name: gpu"), 8, "nodePools[1].name", "used twice"),
    ("cloud-needs-instance-type", VALID.replace(
        "kind: kind", "kind: gke\n  project: acme-ml-prod\n  region: europe-west4\n  zones: [europe-west4-a]"),
     9, "nodePools[0].instanceType", "instanceType"),
    ("gitops-needs-repo", VALID.replace("  repoUrl: https://example.com/gitops.git\n", "  revision: main\n"), 11,
     "gitops.repoUrl", "no repoUrl"),
    ("bad-quantity", VALID.replace("quota: {gpus: 2}", "quota: {gpus: 2, memory: lots}"), 14, "teams[0].quota.memory",
     "quantity"),
    ("bad-duration", VALID + "observability:\n  retention: forever\n", 16, "observability.retention", "duration"),
    ("unicode-name", VALID.replace("name: dev", "name: dév"), 2, "metadata.name", "DNS-1123"),
    ("sharing-unknown-strategy", VALID + "gpuStack:\n  sharing: {strategy: mps}\n", 16, "gpuStack.sharing", "time-slicing"),
    ("simulate-on-cloud", "metadata: {name: prod}\ncluster: {kind: gke, project: acme-ml-prod, region: europe-west4, zones: [europe-west4-a]}\n"
     "nodePools:\n  - {name: sys, role: system, instanceType: e2-standard-4}\n"
     "gitops: {enabled: false}\ngpuStack:\n  simulate: true\n", 7, "gpuStack.simulate", "simulate is for kind"),
    ("gke-needs-zones", GKE.replace("  zones: [europe-west4-a, europe-west4-b]\n", ""), 3, "cluster.zones", "missing"),
    ("gke-zone-outside-region", GKE.replace("europe-west4-b]", "us-central1-a]", 1), 6, "cluster.zones[1]",
     "not in region europe-west4"),
    ("gke-pool-zone-unknown", GKE.replace("    maxSize: 1", "    maxSize: 4\n    zones: [europe-west4-c]"), 13,
     "nodePools[1].zones[0]", "not one of the cluster's zones"),
    ("gke-starts-above-max", GKE.replace("    maxSize: 1", "    minSize: 1\n    maxSize: 1"), 13,
     "nodePools[1].maxSize", "would start with 2 nodes"),
    ("zones-on-kind", VALID.replace("    gpu: {model: l4, count: 2}", "    gpu: {model: l4, count: 2}\n    zones: [a-b1-c]"),
     8, "nodePools[0].zones", "zones are for GKE pools"),
    ("duplicate-key", VALID + "metadata:\n  name: other\n", 0, "", "duplicate"),
    ("yaml-syntax", VALID.replace("quota: {gpus: 2}", "quota: {gpus: 2"), 0, "", "YAML syntax error"),
    ("tab-indent", VALID.replace("  name: dev", "\tname: dev"), 2, "", "YAML syntax error"),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "blueprint.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_base_case_is_valid(tmp_path: Path) -> None:
    assert load_blueprint(_write(tmp_path, VALID)).metadata.name == "dev"


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(("text", "line", "path", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_invalid_blueprint_is_reported_precisely(tmp_path: Path, text: str, line: int, path: str, message: str) -> None:
    file = _write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_blueprint(file)
    problems = caught.value.problems
    matching = [p for p in problems if path in p.path and message.lower() in (p.message + " " + p.hint).lower()]
    assert matching, f"no problem with path~{path!r} and message~{message!r} in:\n{caught.value}"
    problem = matching[0]
    assert problem.file == str(file)
    if line:
        assert problem.line == line, str(caught.value)
    assert problem.column >= 1
    rendered = str(caught.value)
    assert rendered.startswith(f"{file}:")
    assert "Traceback" not in rendered


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("name: fraud", "name: Fraud").replace("count: 2}", "count: 0}")
    with pytest.raises(SpecError) as caught:
        load_blueprint(_write(tmp_path, text))
    paths = {p.path for p in caught.value.problems}
    assert {"nodePools[0].gpu.count", "teams[0].name"} <= paths


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- a\n- b\n", "got a list"),
    ("just a string\n", "got a string"),
    ("42\n", "got a int"),
])
def test_not_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_blueprint(_write(tmp_path, text))
    assert message in str(caught.value)
    assert caught.value.problems[0].line == 1


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the file"):
        load_blueprint(tmp_path / "absent.yaml")


def test_binary_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "blob.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_blueprint(path)


# --- property-based: random mutations of a valid blueprint raise only SpecError -----------------

_BASE = yaml.safe_load(VALID)
_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


_ALL_PATHS = _paths(_BASE)[1:]


def _mutate(base: dict, path: tuple, action: str, value: object) -> object:
    import copy

    doc = copy.deepcopy(base)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "add" and isinstance(parent, dict):
        parent[f"{last}x"] = value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_ALL_PATHS), action=st.sampled_from(["delete", "replace", "add"]), value=_LEAVES)
def test_random_mutations_raise_only_spec_errors(tmp_path: Path, path: tuple, action: str, value: object) -> None:
    doc = _mutate(_BASE, path, action, value)
    file = tmp_path / "mutated.yaml"
    file.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        load_blueprint(file)
    except SpecError as error:
        assert error.problems
        assert all(p.line >= 1 and p.column >= 1 for p in error.problems)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_text_raises_only_spec_errors(tmp_path: Path, text: str) -> None:
    file = tmp_path / "random.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        load_blueprint(file)
    except SpecError as error:
        assert error.problems
