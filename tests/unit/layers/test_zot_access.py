"""Issue #16 finding 4, proven by zot's own rules: who may read and write which repository in the zot Shipway renders.

zot_eval states zot v2.1.18's access control as its source implements it (rules and files in its docstring).
It is checked first on doublestar's and zot's own test cases, then asked about the config.json that
render/registry.py puts in the zot release of every example blueprint. The identity table it must give:

    identity          <team>/** (own)         other teams' repos   platform repos (**)     delete
    <team>-pull       read                    -                    -                       -
    <team>-push       read, create, update    -                    -                       -
    shipway-admin     everything              everything           everything              yes
    shipway-metrics   -                       -                    -                       -
    anonymous         -                       -                    read on kind only       -
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from zot_eval import (
    ANONYMOUS,
    CREATE,
    DELETE,
    METHOD_ACTIONS,
    READ,
    UPDATE,
    Ambiguous,
    BadPattern,
    Request,
    Unsupported,
    Zot,
    action_for,
    glob_match,
    startup_errors,
    unknown_actions,
)

from shipway.render import registry

# doublestar's own cases (bmatcuk/doublestar doublestar_test.go, matchTests: pattern, path, shouldMatch),
# those in the syntax zot_eval models; None where the row expects ErrBadPattern.
DOUBLESTAR_CASES = [
    ("*", "", True), ("*", "/", False), ("abc", "abc", True), ("*c", "abc", True), ("a*", "a", True),
    ("a*", "ab/c", False), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True), ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[b-d]", "abc", True), ("ab[^c]", "abc", False), ("ab[^e-g]", "abc", True), ("a?b", "a☺b", True),
    ("a[!a]b", "a☺b", True), ("a???b", "a☺b", False), ("[a-ζ]*", "α", True), ("a?b", "a/b", False),
    ("a*b", "a/b", False), ("[-]", "-", True), ("[x-]", "z", False), ("[a-b-d]", "-", True),
    ("[a-b-d]", "c", False), ("[a-b-x]", "x", True), ("[]a]", "]", None), ("[", "a", None), ("[^bc", "a", None),
    ("a[", "ab", None), ("e/[", "e/[", None), ("e/]", "e/]", True),
    ("**", "", True), ("a/**", "a", True), ("a/**", "a/", True), ("a/**", "a/b", True), ("a/**", "a/b/c", True),
    ("**/c", "c", True), ("**/c", "a/b/c", True), ("**/c", "a/b", False), ("**/c", "abcd", False),
    ("**/c", "a/abc", False), ("a/**/b", "a/b", True), ("a/**/d", "a/b/c/d", True), ("a/b/c", "a/b//c", False),
    ("abc**", "abc/b", False), ("**/*.txt", "abc/【test】.txt", True), ("e/**", "e/**", True),
    ("e/?", "e/*", True), ("case-sensitive/Fi*", "case-sensitive/File", True),
    ("nonexistent-path/**", "a", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), DOUBLESTAR_CASES)
def test_glob_match_agrees_with_doublestar_own_cases(pattern: str, name: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(BadPattern):
            glob_match(pattern, name)
    else:
        assert glob_match(pattern, name) is expected


def test_glob_match_refuses_what_it_does_not_model() -> None:
    for pattern in ("{a,b}/**", "a\\*b", "/a/**", "a/**/", "a/**/**"):
        with pytest.raises(Unsupported):
            glob_match(pattern, "a/b")
    # The semantics Shipway's patterns rely on, stated once more: case-sensitive, names never cleaned.
    assert not glob_match("teama/**", "TeamA/x") and not glob_match("teama/**", "teama-evil/x")
    assert glob_match("teamb/**", "teamb/../teama/x") and not glob_match("teama/**", "teamb/../teama/x")


def _config(repositories: dict[str, Any], admin: dict[str, Any] | None = None, anonymous_only: bool = False) -> dict:
    auth = {} if anonymous_only else {"htpasswd": {"path": "/etc/zot/htpasswd"}}
    return {"http": {"auth": auth, "accessControl": {"repositories": repositories,
                                                     **({"adminPolicy": admin} if admin else {})}}}


def test_the_evaluator_decides_as_zot_own_authorization_tests() -> None:
    """Cases of zot v2.1.18 pkg/api/controller_test.go RunAuthorizationTests and authz_internal_test.go."""
    # RunAuthorizationTests: on ** the user's actions grow one by one, and each request needs its action...
    repo = "authz/image"
    zot = Zot(_config({"**": {"policies": [{"users": ["bob"], "actions": [CREATE]}], "defaultPolicy": []}}))
    assert zot.can("bob", CREATE, repo) and not zot.can("bob", READ, repo) and not zot.can("bob", DELETE, repo)
    zot = Zot(_config({"**": {"policies": [{"users": ["bob"], "actions": [CREATE, READ, DELETE]}]}}))
    assert zot.can("bob", READ, repo) and zot.can("bob", DELETE, repo)
    # ...then "longest path matching should match the repo and not **": a policy on the repository itself
    # with create only takes read away again, although ** still grants it (no union).
    zot = Zot(_config({"**": {"policies": [{"users": ["bob"], "actions": [CREATE, READ, DELETE]}]},
                       repo: {"policies": [{"users": ["bob"], "actions": [CREATE]}]}}))
    assert zot.can("bob", CREATE, repo) and not zot.can("bob", READ, repo) and not zot.can("bob", DELETE, repo)
    assert zot.can("bob", READ, "other/image")
    # TestPolicyGroupNonMatchingNoActionOrGroup: a group policy grants only its own actions.
    zot = Zot({"http": {"accessControl": {
        "groups": {"devs": {"users": ["alice"]}},
        "repositories": {"**": {"policies": [{"groups": ["devs"], "actions": [CREATE]},
                                             {"groups": ["others"], "actions": [READ]}]}}}}})
    assert not zot.can("alice", READ, "r") and zot.can("alice", CREATE, "r")


def test_moving_a_tag_is_update_and_a_new_tag_is_create() -> None:
    """TestAuthorizationForTagUpdate (controller_test.go): read+create pushes new tags, latest included, and
    may not move an existing one; with update it may (DistSpecAuthzHandler)."""
    zot = Zot(_config({"test-repo": {"policies": [{"users": ["u"], "actions": [READ, CREATE]}]}}))
    tags = {"v2.0", "latest"}
    assert zot.allowed(Request("u", "PUT", "test-repo", "v1.0"), tags)
    for tag in ("v2.0", "latest"):
        assert not zot.allowed(Request("u", "PUT", "test-repo", tag), tags)
    assert action_for("PUT", "sha256:" + "0" * 64, tags) == CREATE  # by digest: no tag moves
    assert (action_for("POST", None), action_for("PATCH", None), action_for("DELETE", "v2.0")) == (
        CREATE, CREATE, DELETE)
    zot = Zot(_config({"test-repo": {"policies": [{"users": ["u"], "actions": [READ, CREATE, UPDATE]}]}}))
    assert zot.allowed(Request("u", "PUT", "test-repo", "latest"), tags)


def test_catalog_lists_what_the_longest_match_lets_read() -> None:
    """TestPagedRepositoriesWithAuthorization (controller_test.go): odd alpines readable, even ones not."""
    policy = {"policies": [{"users": ["u"], "actions": [READ]}], "defaultPolicy": []}
    zot = Zot(_config({"alpine[13579]": policy, "alpine[2468]": {}}))
    assert zot.catalog("u", [f"alpine{n}" for n in range(1, 10)]) == ["alpine1", "alpine3", "alpine5", "alpine7",
                                                                     "alpine9"]


def test_anonymous_policies_and_startup_validation() -> None:
    """TestAuthorizationWithOnlyAnonymousPolicy: anonymous-only access control needs no authentication;
    anything else without it stops zot (validateAuthzPolicies); a bad glob too (ValidatePattern)."""
    only = _config({"my-repos/repo": {"anonymousPolicy": [READ]}}, anonymous_only=True)
    assert startup_errors(only) == []
    zot = Zot(only)
    assert zot.allowed(Request(ANONYMOUS, "GET", "my-repos/repo", "0.0.2"))
    assert not zot.allowed(Request(ANONYMOUS, "POST", "my-repos/repo"))
    mixed = _config({"**": {"policies": [{"users": ["u"], "actions": [READ]}]}}, anonymous_only=True)
    assert any("validateAuthzPolicies" in error for error in startup_errors(mixed))
    assert any("ValidatePattern" in error for error in startup_errors(_config({"team[/**": {}})))
    assert startup_errors({"http": {"accessControl": {"repositories": {"**": {"anonymousPolicies": [READ]}}}}}) == [
        "config.http.accesscontrol.repositories.**.anonymouspolicies: no such field",
        "accessControl needs htpasswd, ldap, openid, api keys, mTLS or bearer authentication (validateAuthzPolicies)"]
    # Two patterns of one length matching one repository: zot's pick is random, the evaluator refuses.
    with pytest.raises(Ambiguous):
        Zot(_config({"a/*": {}, "*/b": {}})).can("u", READ, "a/b")


# --- the config Shipway renders ---------------------------------------------------------------------------

OTHER_REPOS = ("shipway/sidecar", "docker.io/library/busybox", "localhost_5001/platform/image", "mirror")


def _rendered(synthesised) -> dict[str, Any]:
    return json.loads(synthesised.releases["zot"]["values"]["configFiles"]["config.json"])


def _repositories(teams: list[str]) -> dict[str, str | None]:
    """Repository -> the team it belongs to (None: the platform's), as names zot routes; look-alikes of a
    team's prefix (`<team>-evil/x`) are the platform's."""
    names = [*OTHER_REPOS, *(name for team in teams for name in (
        team, f"{team}/model", f"{team}/deep/er/model", f"{team}-evil/x", f"{team}evil/x", f"x/{team}/y"))]
    return {name: registry.owning_team(name, teams) for name in names}


def identity_table_violations(config: dict[str, Any], teams: list[str], on_kind: bool) -> list[str]:
    """Every way the config's decisions differ from the identity table in this module's docstring."""
    zot = Zot(config)
    problems = [f"zot would not start: {error}" for error in startup_errors(config)]
    problems += [f"an action zot ignores: {found}" for found in unknown_actions(config)]
    identities: dict[str, tuple[str | None, set[str]]] = {
        registry.ADMIN_USERNAME: (None, set(METHOD_ACTIONS)), registry.METRICS_USERNAME: (None, set()),
        ANONYMOUS: (None, set())}
    for team in teams:
        identities[f"{team}-pull"] = (team, {READ})
        identities[f"{team}-push"] = (team, {READ, CREATE, UPDATE})
    repositories = _repositories(teams)
    for user, (own, actions) in identities.items():
        for repo, owner in repositories.items():
            if user == registry.ADMIN_USERNAME:
                expected = set(METHOD_ACTIONS)
            elif user == ANONYMOUS:
                expected = {READ} if on_kind and owner is None else set()
            else:
                expected = actions if owner is not None and owner == own else set()
            try:
                granted = {action for action in METHOD_ACTIONS if zot.can(user, action, repo)}
            except Ambiguous as error:
                problems.append(str(error))
                continue
            if granted != expected:
                problems.append(f"{user or 'anonymous'} on {repo}: {sorted(granted)}, want {sorted(expected)}")
        visible = set(zot.catalog(user, repositories))
        readable = {repo for repo in repositories if zot.can(user, READ, repo)}
        if visible != readable:
            problems.append(f"{user or 'anonymous'}'s catalog lists {sorted(visible - readable)} it cannot read")
    admins = (config["http"]["accessControl"].get("adminPolicy") or {}).get("users") or []
    if admins != [registry.ADMIN_USERNAME]:
        problems.append(f"adminPolicy names {admins}: the admin identity is shipway-admin alone")
    return problems


def test_the_rendered_access_control_gives_the_identity_table(each_blueprint) -> None:
    config = _rendered(each_blueprint)
    teams = [team.name for team in each_blueprint.blueprint.teams]
    assert len(teams) >= 2
    on_kind = each_blueprint.blueprint.cluster.kind == "kind"
    assert identity_table_violations(config, teams, on_kind) == []
    assert startup_errors(config) == [] and unknown_actions(config) == []


def test_names_that_try_to_escape_reach_no_team_repository(each_blueprint) -> None:
    """A repository name that looks like another team's reaches nothing of it: not routed, or matched by
    the platform's ** only."""
    zot = Zot(_rendered(each_blueprint))
    team, other = [team.name for team in each_blueprint.blueprint.teams][:2]
    # Not dist-spec names: no route takes them, for anyone, the admin included (R1).
    for name in (f"{other}/../{team}/x", f"{team.capitalize()}/x", f"{team}/X", f"{team}//x", f"/{team}/x"):
        for user in (f"{team}-pull", f"{team}-push", f"{other}-push", registry.ADMIN_USERNAME, ANONYMOUS):
            for method in ("GET", "PUT", "DELETE"):
                assert not zot.allowed(Request(user, method, name, "1")), (user, method, name)
    # Even past routing, the glob would give the ../ name to the first team named and the other names to **.
    assert not any(zot.can(f"{team}-{kind}", action, f"{other}/../{team}/x")
                   for kind in ("pull", "push") for action in METHOD_ACTIONS)
    assert zot.can(f"{other}-push", CREATE, f"{other}/../{team}/x")  # hence R1 matters: it is other's prefix
    # A routable look-alike: only the platform's rules apply; the team's identities get nothing there.
    for lookalike in (f"{team}-evil/x", f"{team}evil/x", f"{team}.x/y", f"x/{team}/y"):
        assert zot.pattern(lookalike) == "**"
        assert not any(zot.can(f"{team}-{kind}", action, lookalike)
                       for kind in ("pull", "push") for action in METHOD_ACTIONS)


def test_pushes_and_pulls_as_docker_and_oras_send_them(each_blueprint) -> None:
    """The requests a push makes (HEAD blob, POST upload, PATCH/PUT chunks, PUT manifest, then moving the tag)
    and a pull makes, decided per identity; delete stays the admin's."""
    zot = Zot(_rendered(each_blueprint))
    team, other = [team.name for team in each_blueprint.blueprint.teams][:2]
    repo, tags = f"{team}/iris", {"1.0.0"}
    push = [Request(f"{team}-push", method, repo, ref) for method, ref in
            (("HEAD", None), ("POST", None), ("PATCH", None), ("PUT", None), ("PUT", "1.1.0"), ("PUT", "1.0.0"))]
    assert all(zot.allowed(request, tags) for request in push)
    assert not any(zot.allowed(Request(f"{other}-push", r.method, r.repository, r.reference), tags) for r in push)
    assert not any(zot.allowed(Request(f"{team}-pull", r.method, r.repository, r.reference), tags)
                   for r in push if r.method != "HEAD")
    for user in (f"{team}-push", f"{team}-pull", f"{other}-push"):
        assert not zot.allowed(Request(user, "DELETE", repo, "1.0.0"), tags)
    assert zot.allowed(Request(registry.ADMIN_USERNAME, "DELETE", repo, "1.0.0"), tags)
    assert zot.allowed(Request(f"{team}-pull", "GET", repo, "1.0.0"))
    assert not zot.allowed(Request(f"{other}-pull", "GET", repo, "1.0.0"))
    assert not zot.allowed(Request(ANONYMOUS, "GET", repo, "1.0.0"))


# Plausible mistakes in the render, each of which the identity table must catch.
def _mistakes(teams: list[str]) -> dict[str, Any]:
    team = teams[0]

    def repos(config: dict) -> dict:
        return config["http"]["accessControl"]["repositories"]

    def own(config: dict) -> dict:
        return repos(config)[f"{team}/**"]

    def rename(config: dict, pattern: str) -> None:
        repos(config)[pattern] = repos(config).pop(f"{team}/**")

    return {
        "push may delete": lambda c: own(c)["policies"][1]["actions"].append(DELETE),
        "pull may create": lambda c: own(c)["policies"][0]["actions"].append(CREATE),
        "push lacks update": lambda c: own(c)["policies"][1]["actions"].remove(UPDATE),
        "team glob without its slash": lambda c: rename(c, f"{team}**"),
        "team glob one level deep only": lambda c: rename(c, f"{team}/*"),
        "team glob by prefix": lambda c: rename(c, f"{team}*/**"),
        "team glob capitalised": lambda c: rename(c, f"{team.capitalize()}X/**"),
        "every user reads **": lambda c: repos(c)["**"].update(defaultPolicy=[READ]),
        "every user reads a team": lambda c: own(c).update(defaultPolicy=[READ]),
        "anonymous reads a team": lambda c: own(c).update(anonymousPolicy=[READ]),
        "a team identity is admin": lambda c: c["http"]["accessControl"]["adminPolicy"]["users"].append(
            f"{team}-push"),
        "admin without delete": lambda c: c["http"]["accessControl"]["adminPolicy"]["actions"].remove(DELETE),
        "a typo in an action": lambda c: own(c)["policies"][0].update(actions=["Read"]),
        "a key zot does not know": lambda c: own(c).update(anonymousPolicies=[]),
        "no authentication": lambda c: c["http"].pop("auth"),
        "a misspelt storage key": lambda c: c["storage"].update(gcIntervall="24h"),
        "push on **": lambda c: repos(c)["**"]["policies"].append({"users": [f"{team}-push"], "actions": [CREATE]}),
    }


@pytest.mark.parametrize("mistake", list(_mistakes(["a", "b"])))
def test_each_plausible_mistake_breaks_the_identity_table(eks_prod, kind_dev, mistake: str) -> None:
    for rendered in (eks_prod, kind_dev):
        teams = [team.name for team in rendered.blueprint.teams]
        config = copy.deepcopy(_rendered(rendered))
        _mistakes(teams)[mistake](config)
        on_kind = rendered.blueprint.cluster.kind == "kind"
        assert identity_table_violations(config, teams, on_kind) != [], f"{mistake} went unnoticed"


def test_kind_anonymous_reads_differ_only_in_the_platform_repositories(kind_dev, eks_prod) -> None:
    """kind's containerd mirror reads zot's NodePort without credentials: every non-team repository, and
    still no team's; elsewhere no anonymous request gets past authentication (N1)."""
    kind, cloud = Zot(_rendered(kind_dev)), Zot(_rendered(eks_prod))
    assert kind.anonymous_allowed() and not cloud.anonymous_allowed()
    for repo in OTHER_REPOS:
        assert kind.allowed(Request(ANONYMOUS, "GET", repo, "1")) and not cloud.allowed(Request(ANONYMOUS, "GET", repo))
        assert not kind.allowed(Request(ANONYMOUS, "PUT", repo, "1"))
    teams = [team.name for team in kind_dev.blueprint.teams]
    repositories = _repositories(teams)
    assert kind.catalog(ANONYMOUS, repositories) == sorted(repo for repo, team in repositories.items() if team is None)
    assert all(kind.catalog(f"{team}-pull", repositories) == sorted(repo for repo, owner in repositories.items()
                                                                    if owner == team) for team in teams)


def test_identities_never_collide_whatever_the_team_names() -> None:
    """Team identities end in -pull/-push, the platform's in -admin/-metrics: no team name makes one user two."""
    from shipway.spec.blueprint import Blueprint

    names = ["shipway", "shipway-admin", "shipway-metrics", "a", "a-pull", "pull"]
    blueprint = Blueprint.model_validate({"metadata": {"name": "n"}, "cluster": {"kind": "kind"},
                                          "gitops": {"enabled": False},
                                          "teams": [{"name": name} for name in names]})
    users = [identity.username for identity in registry.identities(blueprint)]
    assert len(users) == len(set(users)) == 2 + 2 * len(names)
    config = registry.zot_config(blueprint.registry, registry.identities(blueprint), anonymous_read=True)
    assert identity_table_violations(config, names, on_kind=True) == []


def test_the_admin_identity_is_named_by_zot_alone(each_blueprint) -> None:
    """No Secret, pod, job or workflow Shipway renders carries the admin: only zot's own config names it (its
    password is the platform stack's output, for the operator)."""
    naming = [(o["kind"], o["metadata"]["name"]) for o in each_blueprint.objects
              if registry.ADMIN_USERNAME in json.dumps(o, default=str)]
    releases = [name for name, release in each_blueprint.releases.items()
                if registry.ADMIN_USERNAME in json.dumps(release, default=str)]
    assert naming == [] and releases == ["zot"]
    control = _rendered(each_blueprint)["http"]["accessControl"]
    assert [pattern for pattern, group in control["repositories"].items()
            if registry.ADMIN_USERNAME in json.dumps(group)] == []


def test_owning_team_is_what_zot_grants_the_team(each_blueprint) -> None:
    """registry.owning_team (which `images mirror` uses to keep platform copies out of team repositories)
    names exactly the team whose pull identity zot lets read, on every name the identity table asks about."""
    zot = Zot(_rendered(each_blueprint))
    teams = [team.name for team in each_blueprint.blueprint.teams]
    for repo in _repositories(teams):
        readers = [team for team in teams if zot.can(f"{team}-pull", READ, repo)]
        assert readers == [owner for owner in [registry.owning_team(repo, teams)] if owner is not None], repo
    assert registry.owning_team("mirror/docker.io/library/busybox", [*teams, "mirror"]) == "mirror"
