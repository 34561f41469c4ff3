"""Tenancy: restricted namespaces, quotas with GPUs, limits, default-deny, RBAC, priority classes."""

from __future__ import annotations


def test_every_team_env_namespace_has_its_guard_rails(each_blueprint):
    blueprint = each_blueprint.blueprint
    for team in blueprint.teams:
        for env, ns in blueprint.namespaces[team.name].items():
            [namespace] = [n for n in each_blueprint.kind("Namespace") if n["metadata"]["name"] == ns]
            labels = namespace["metadata"]["labels"]
            assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
            assert labels["shipway.dev/environment"] == env
            [quota] = [q for q in each_blueprint.kind("ResourceQuota") if q["metadata"]["namespace"] == ns]
            hard = quota["spec"]["hard"]
            assert hard["requests.nvidia.com/gpu"] == str(team.quota.gpus)
            assert hard["requests.cpu"] == team.quota.cpu and hard["limits.memory"] == team.quota.memory
            policies = {p["metadata"]["name"]: p for p in each_blueprint.kind("NetworkPolicy")
                        if p["metadata"]["namespace"] == ns}
            assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
            assert {"allow-dns", "allow-prometheus", "allow-ingress-path"} <= set(policies)
            assert any(lr["metadata"]["namespace"] == ns for lr in each_blueprint.kind("LimitRange"))


def test_eks_quotas_match_the_blueprint(eks_prod):
    hard = {q["metadata"]["namespace"]: q["spec"]["hard"] for q in eks_prod.kind("ResourceQuota")}
    assert hard["llm-prod"]["requests.nvidia.com/gpu"] == "56"
    assert hard["fraud-staging"]["limits.cpu"] == "64"


def test_role_bindings_name_the_team_groups(eks_prod):
    bindings = {b["metadata"]["namespace"]: b for b in eks_prod.kind("RoleBinding")}
    assert bindings["fraud-prod"]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "fraud-ml-engineers"}]


def test_serving_preempts_batch(kind_dev):
    classes = {c["metadata"]["name"]: c for c in kind_dev.kind("PriorityClass")}
    assert classes["shipway-serving"]["value"] > classes["shipway-batch"]["value"]
    assert classes["shipway-batch"]["preemptionPolicy"] == "Never"


def test_tenancy_resources_are_children_of_the_tenancy_layer(kind_dev):
    for resource in kind_dev.result.resources:
        if resource.name.startswith("shipway-dev-tenancy-"):
            assert kind_dev.parent_type(resource) == "shipway:tenancy:Tenancy"
            assert resource.provider == "shipway-dev-cluster-provider-id"
