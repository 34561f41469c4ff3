"""A new GitOps repository in the layout the platform's ApplicationSet reads: apps/<env>/<team>/<model>/."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shipway.delivery.errors import PromotionRefused
from shipway.delivery.placement import Profile
from shipway.delivery.promote import Git
from shipway.files import target_path

DEFAULT_ENVIRONMENTS = ("staging", "prod")

README = """# {name} GitOps repository

Argo CD syncs this repository into the platform. Its ApplicationSet
(`shipway-models`) makes one Application per folder three levels under
`{root}/`:

```
{root}/<environment>/<team>/<model>/   ->  namespace <team>-<environment>
```

Environments, in promotion order: {environments}.

Nobody edits a model folder by hand. `shipway promote model.yaml --gitops-repo
PATH --env ENV` renders the model (Argo Rollout, Services, ServiceMonitor,
PodDisruptionBudget, autoscaler) and commits it on
a branch `promote/<env>/<model>-<version>`; merging that branch's pull request
is the deployment. Shipway owns each model folder and replaces it whole.

Rules promotion enforces:

- a version whose gate report failed is refused;
- `{last}` takes only a version already merged into `{before}`, unless `--force`;
- promoting the same version twice changes nothing.

Each team's folders deploy only as that team (its own AppProject and
namespaces), and `CODEOWNERS` names the team's owners for them: turn on
"Require review from Code Owners" for `{revision}`, so that no one merges into
another team's folders without that team's approval. Network policies are the
platform's; this repository cannot hold them.

`platform.json` (from `shipway synth`) describes the platform: registry,
teams, GPU pools, runtimes and analysis templates. Promotion reads it.
"""


def init_gitops(directory: Path, profile: Profile | None = None, profile_text: str | None = None) -> list[Path]:
    """Create the folder layout, a README and a first commit; refuse a non-empty directory."""
    directory = target_path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise PromotionRefused(f"{directory} is not empty; init-gitops creates a new repository")
    environments = list((profile or {}).get("environments") or DEFAULT_ENVIRONMENTS)
    gitops = (profile or {}).get("gitops") or {}
    root = str(gitops.get("path") or "apps")
    revision = str(gitops.get("revision") or "main")
    directory.mkdir(parents=True, exist_ok=True)
    last = environments[-1]
    before = environments[-2] if len(environments) > 1 else last
    written = [directory / "README.md"]
    written[0].write_text(README.format(name=(profile or {}).get("name", "Shipway"), root=root, revision=revision,
                                        environments=", ".join(environments), last=last, before=before))
    for environment in environments:
        # git keeps no empty folders; the ApplicationSet matches only three levels down, so this file is ignored.
        keep = directory / root / environment / ".gitkeep"
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text("")
        written.append(keep)
    written.append(directory / "CODEOWNERS")
    written[-1].write_text(codeowners(profile or {}, root))
    if profile_text is not None:
        written.append(directory / "platform.json")
        written[-1].write_text(profile_text)
    try:
        subprocess.run(["git", "init", "--quiet", f"--initial-branch={revision}", str(directory)], check=True,
                       capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as error:
        raise PromotionRefused(f"git init failed in {directory}: {error}") from None
    git = Git(directory)
    git.run("add", "--all")
    git.commit("Start the Shipway GitOps repository\n")
    return written


def codeowners(profile: Profile, root: str) -> str:
    """CODEOWNERS: each team's folders, in every environment, owned by the team's codeOwners from the blueprint.

    The ApplicationSet deploys a team's folders as that team; this file makes a change there need that
    team's approval, so membership of the GitOps repo alone deploys into no team's namespaces.
    """
    lines = ["# Written by `shipway init-gitops` from the blueprint's teams[].codeOwners.",
             "# Require review from Code Owners on the deployed branch, or this file binds nothing.", ""]
    for team, facts in sorted((profile.get("teams") or {}).items()):
        owners = list((facts or {}).get("codeOwners") or [])
        if owners:
            lines.append(f"/{root}/*/{team}/ {' '.join(owners)}")
        else:
            lines.append(f"# {team}: no codeOwners in the blueprint, so its folders need no team's approval.")
    return "\n".join(lines) + "\n"
