"""GitOps: Argo CD, its repository credentials, an AppProject per team, and the model ApplicationSet."""

from __future__ import annotations

from typing import Any

from shipway import catalog
from shipway.catalog import PROMETHEUS_RELEASE
from shipway.render.common import Obj, deep_merge, metadata, namespace
from shipway.render.layer import LayerRender, Release
from shipway.spec.blueprint import Blueprint

NAMESPACE = "argocd"
APPLICATION_SET = "shipway-models"
IN_CLUSTER = "https://kubernetes.default.svc"
# Kinds a model's folder may hold; AppProjects admit these and nothing cluster-scoped. NetworkPolicy is
# not among them: a team that could sync its own policies could undo the platform's default deny.
MODEL_KINDS = (
    ("argoproj.io", "Rollout"), ("argoproj.io", "AnalysisTemplate"), ("", "Service"), ("", "ConfigMap"),
    ("", "ServiceAccount"), ("monitoring.coreos.com", "ServiceMonitor"), ("monitoring.coreos.com", "PrometheusRule"),
    ("policy", "PodDisruptionBudget"), ("autoscaling", "HorizontalPodAutoscaler"),
    ("serving.kserve.io", "InferenceService"), ("gateway.networking.k8s.io", "HTTPRoute"),
)
# Argo Rollouts' Gateway API plugin sets a canary route's backend weights at each step; Argo CD must leave
# them alone, or self-heal would put the weights from git back mid-rollout.
ROUTE_WEIGHTS_IGNORED = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                         "jqPathExpressions": [".spec.rules[].backendRefs[].weight"]}


def argocd_values(blueprint: Blueprint) -> Obj:
    """Values for the argo-cd chart; HA when the blueprint says so."""
    ha = blueprint.gitops_high_availability
    # The Prometheus stack only selects ServiceMonitors that carry its release label.
    metrics = {"enabled": True, "serviceMonitor": {"enabled": True, "additionalLabels": {"release": PROMETHEUS_RELEASE}}}
    values: Obj = {
        "global": {"domain": "argocd.local"},
        "configs": {"params": {"server.insecure": True, "applicationsetcontroller.policy": "sync"},
                    "cm": {"exec.enabled": False, "admin.enabled": True}},
        "redis-ha": {"enabled": ha},
        "controller": {"replicas": 1, "metrics": metrics},
        "server": {"replicas": 2 if ha else 1, "metrics": metrics},
        "repoServer": {"replicas": 2 if ha else 1, "metrics": metrics},
        "applicationSet": {"replicas": 2 if ha else 1},
    }
    return deep_merge(values, blueprint.gitops.values)


def repository_secret(blueprint: Blueprint, token: Any) -> Obj:
    """Argo CD's repository credentials for the GitOps repo; token may be a Pulumi secret output."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata("shipway-gitops-repo", NAMESPACE, {"argocd.argoproj.io/secret-type": "repository"}),
        "stringData": {"type": "git", "url": blueprint.gitops.repo_url, "username": "git", "password": token},
    }


def app_projects(blueprint: Blueprint) -> list[Obj]:
    """One AppProject per team, limited to its namespaces and the GitOps repo."""
    projects = []
    for team in blueprint.teams:
        destinations = [{"server": IN_CLUSTER, "namespace": ns} for ns in blueprint.namespaces[team.name].values()]
        projects.append({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": metadata(team.name, NAMESPACE, {"shipway.dev/team": team.name}),
            "spec": {
                "description": f"Models of team {team.name}",
                "sourceRepos": [blueprint.gitops.repo_url],
                "destinations": destinations,
                "clusterResourceWhitelist": [],
                "namespaceResourceWhitelist": [{"group": group, "kind": kind} for group, kind in MODEL_KINDS],
                "orphanedResources": {"warn": True},
            },
        })
    return projects


def application_set(blueprint: Blueprint) -> Obj:
    """The ApplicationSet: one Application per apps/<env>/<team>/<model> folder.

    One git generator per team, reading only that team's folders and naming that team's AppProject
    (and namespace) itself, so a folder deploys as the team whose folder it is, never as a name
    taken from the path; CODEOWNERS (shipway init-gitops) makes the team's owners approve changes there.
    """
    gitops = blueprint.gitops
    root = gitops.path
    sync: Obj = {"syncOptions": ["CreateNamespace=false", "ServerSideApply=true", "RespectIgnoreDifferences=true"]}
    if gitops.sync_policy.automated:
        sync["automated"] = {"prune": gitops.sync_policy.prune, "selfHeal": gitops.sync_policy.self_heal}
    env_segment = root.count("/") + 1
    env, team, model = (f"(index .path.segments {env_segment + offset})" for offset in range(3))
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": metadata(APPLICATION_SET, NAMESPACE),
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"git": {
                "repoURL": gitops.repo_url,
                "revision": gitops.revision,
                "directories": [{"path": team_folders(root, team.name)}],
                "template": {"metadata": {}, "spec": {
                    "project": team.name,
                    "destination": {"server": IN_CLUSTER, "namespace": f"{team.name}-{{{{ {env} }}}}"},
                }},
            }} for team in blueprint.teams],
            "template": {
                "metadata": {
                    "name": f"{{{{ {model} }}}}-{{{{ {team} }}}}-{{{{ {env} }}}}",
                    "labels": {"shipway.dev/environment": f"{{{{ {env} }}}}", "shipway.dev/team": f"{{{{ {team} }}}}",
                               "shipway.dev/model": f"{{{{ {model} }}}}"},
                },
                "spec": {
                    "project": f"{{{{ {team} }}}}",
                    "source": {"repoURL": gitops.repo_url, "targetRevision": gitops.revision,
                               "path": "{{ .path.path }}"},
                    "destination": {"server": IN_CLUSTER, "namespace": f"{{{{ {team} }}}}-{{{{ {env} }}}}"},
                    "syncPolicy": sync,
                    "ignoreDifferences": [ROUTE_WEIGHTS_IGNORED],
                },
            },
        },
    }


def team_folders(root: str, team: str) -> str:
    """The glob of one team's model folders in the GitOps repo: <root>/<env>/<team>/<model>."""
    return f"{root}/*/{team}/*"


def render(blueprint: Blueprint, token: Any | None) -> LayerRender:
    """Argo CD, repo credentials (when a token is given), AppProjects and the ApplicationSet."""
    if not blueprint.gitops.enabled:
        return LayerRender()
    layer = LayerRender(namespaces=[namespace(NAMESPACE)])
    layer.releases.append(Release("argo-cd", catalog.ARGO_CD, NAMESPACE, argocd_values(blueprint)))
    if token is not None:
        layer.objects.append(repository_secret(blueprint, token))
    layer.objects += app_projects(blueprint)
    layer.objects.append(application_set(blueprint))
    return layer
