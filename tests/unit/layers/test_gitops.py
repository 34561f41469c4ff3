"""GitOps: Argo CD, repo credentials, an AppProject per team, the model ApplicationSet."""

from __future__ import annotations

from shipway.render import gitops


def test_app_projects_are_limited_to_their_team_namespaces(each_blueprint):
    blueprint = each_blueprint.blueprint
    projects = {p["metadata"]["name"]: p for p in each_blueprint.kind("AppProject")}
    assert set(projects) == {team.name for team in blueprint.teams}
    tenancy = {ns["metadata"]["name"] for ns in each_blueprint.kind("Namespace")
               if "shipway.dev/team" in ns["metadata"]["labels"]}
    for team in blueprint.teams:
        spec = projects[team.name]["spec"]
        destinations = {d["namespace"] for d in spec["destinations"]}
        assert destinations == set(blueprint.namespaces[team.name].values())
        assert destinations <= tenancy
        assert {d["server"] for d in spec["destinations"]} == {gitops.IN_CLUSTER}
        assert spec["sourceRepos"] == [blueprint.gitops.repo_url]
        assert spec["clusterResourceWhitelist"] == []


def test_application_set_generates_one_app_per_env_team_model(kind_dev):
    [appset] = kind_dev.kind("ApplicationSet")
    spec = appset["spec"]
    teams = [team.name for team in kind_dev.blueprint.teams]
    assert [g["git"]["directories"] for g in spec["generators"]] == [[{"path": f"apps/*/{team}/*"}] for team in teams]
    template = spec["template"]
    assert template["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_a_team_folder_deploys_only_as_that_team(each_blueprint):
    """Finding 6: the project was read from the folder path of one shared repo, so whoever merged could
    deploy into any team. Each team's generator now reads only its folders and names its project itself."""
    [appset] = each_blueprint.kind("ApplicationSet")
    for team, generator in zip(each_blueprint.blueprint.teams, appset["spec"]["generators"], strict=True):
        git = generator["git"]
        assert git["directories"] == [{"path": f"{each_blueprint.blueprint.gitops.path}/*/{team.name}/*"}]
        assert git["template"]["spec"]["project"] == team.name
        assert git["template"]["spec"]["destination"]["namespace"].startswith(f"{team.name}-")


def test_teams_may_not_sync_network_policies(each_blueprint):
    for project in each_blueprint.kind("AppProject"):
        kinds = {entry["kind"] for entry in project["spec"]["namespaceResourceWhitelist"]}
        assert "NetworkPolicy" not in kinds and "Role" not in kinds and "RoleBinding" not in kinds
        assert "Secret" not in kinds and "Pod" not in kinds and "Job" not in kinds


def test_argocd_is_ha_in_the_cloud_only(kind_dev, eks_prod):
    assert kind_dev.releases["argo-cd"]["values"]["redis-ha"]["enabled"] is False
    cloud = eks_prod.releases["argo-cd"]["values"]
    assert cloud["redis-ha"]["enabled"] is True
    # argo-cd chart 10.x reads applicationSet.replicas; the old replicaCount key is silently ignored.
    assert cloud["applicationSet"]["replicas"] == 2 and cloud["server"]["replicas"] == 2
    assert "replicaCount" not in cloud["applicationSet"]


def test_repo_credentials_are_a_secret_input(kind_dev):
    secret = kind_dev.named("shipway-dev-gitops-secret--argocd--shipway-gitops-repo")
    assert secret.inputs["stringData"] == "<secret>"
    assert secret.inputs["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
