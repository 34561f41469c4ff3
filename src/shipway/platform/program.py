"""The Pulumi program behind every stack: read the blueprint named in config, build the Platform."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pulumi

from shipway.platform import Platform, PlatformArgs
from shipway.spec import load_blueprint
from shipway.spec.blueprint import Blueprint

CONFIG_NAMESPACE = "shipway"


def secret_keys(blueprint: Blueprint) -> list[str]:
    """Every stack config key the blueprint reads as a Pulumi secret."""
    keys = ["kubeconfig", "registryPassword"]
    if blueprint.gitops.enabled and blueprint.gitops.credentials_secret:
        keys.append(blueprint.gitops.credentials_secret)
    keys += [receiver.secret for receiver in blueprint.observability.receivers]
    retraining = blueprint.observability.retraining
    if retraining is not None and retraining.enabled:
        keys += [key for key in (retraining.github_token_secret, retraining.gitlab_token_secret) if key]
    return list(dict.fromkeys(keys))


def optional_secret_keys(blueprint: Blueprint) -> set[str]:
    """The secret keys the program can do without: a local kubeconfig, a generated password, a public repo."""
    optional = {"kubeconfig", "registryPassword"}
    if blueprint.gitops.enabled and blueprint.gitops.credentials_secret:
        optional.add(blueprint.gitops.credentials_secret)
    return optional


def missing_secrets(blueprint: Blueprint, given: Collection[str]) -> list[str]:
    """The secret keys the blueprint needs, have no default, and the stack config lacks."""
    optional = optional_secret_keys(blueprint)
    return [key for key in secret_keys(blueprint) if key not in optional and key not in given]


def resolve_blueprint_path(value: str, start: Path | None = None) -> Path:
    """A blueprint path from stack config, relative to the Pulumi project root."""
    path = Path(value)
    if path.is_absolute():
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").exists():
            return folder / path
    return here / path


def stack_program() -> Platform:
    """Build the platform for the current stack and export what model delivery needs."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    blueprint = load_blueprint(resolve_blueprint_path(config.require("blueprint")))
    secrets = {}
    for key in secret_keys(blueprint):
        value = config.get_secret(key)
        if value is not None:
            secrets[key] = value
    # Checked before anything is created: a layer would otherwise fail half way with a KeyError.
    missing = missing_secrets(blueprint, secrets)
    if missing:
        raise pulumi.RunError(
            f"stack config lacks secrets the blueprint needs (receivers, retraining tokens): {', '.join(missing)}; "
            f"set each with `pulumi config set --secret {CONFIG_NAMESPACE}:<key> <value>`")
    platform = Platform(blueprint.metadata.name, PlatformArgs(blueprint, secrets))
    pulumi.export("profile", platform.profile)
    pulumi.export("registryUrl", platform.registry_url)
    pulumi.export("registryUsername", platform.registry_username)
    pulumi.export("registryPassword", platform.registry_password)
    # Per team: the pull identity (read) and the push identity for that team's CI (<team>/** only).
    pulumi.export("registryTeamCredentials", platform.registry_team_credentials)
    pulumi.export("kubeconfig", platform.kubeconfig)
    return platform
