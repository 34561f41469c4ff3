"""Where registry credentials come from: flags, then environment, then a docker config file (or its text, as a
Kubernetes dockerconfigjson Secret holds it)."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shipway.artifacts.errors import AuthError
from shipway.artifacts.layout import DOCKER_CONFIG_ENV, PASSWORD_ENV, USERNAME_ENV


@dataclass(frozen=True)
class Credentials:
    """A username and password, or a docker config file to look them up in, and where they came from."""

    username: str | None = None
    password: str | None = None
    docker_config: Path | None = None
    source: str = "no credentials"


def resolve_credentials(
    username: str | None = None,
    password: str | None = None,
    docker_config: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Pick credentials by precedence: flags, environment, docker config (explicit, $DOCKER_CONFIG, ~/.docker)."""
    environ = os.environ if environ is None else environ
    if username or password:
        if not (username and password):
            raise AuthError("Got only one of --username and --password: give both, or neither.")
        return Credentials(username, password, source="--username/--password")
    env_user, env_password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if env_user or env_password:
        if not (env_user and env_password):
            raise AuthError(f"Got only one of {USERNAME_ENV} and {PASSWORD_ENV}: set both, or neither.")
        return Credentials(env_user, env_password, source=f"environment ({USERNAME_ENV})")
    if docker_config is not None:
        if not docker_config.is_file():
            raise AuthError(f"Got --docker-config {docker_config}, which is not a file.")
        return Credentials(docker_config=docker_config, source=f"docker config {docker_config}")
    if environ.get(DOCKER_CONFIG_ENV):
        path = Path(environ[DOCKER_CONFIG_ENV]) / "config.json"
        if path.is_file():
            return Credentials(docker_config=path, source=f"docker config {path}")
    default = Path.home() / ".docker" / "config.json"
    if default.is_file():
        return Credentials(docker_config=default, source=f"docker config {default}")
    return Credentials()


def docker_config_credentials(text: str, registry: str, source: str) -> Credentials:
    """The username and password a docker config.json (a dockerconfigjson Secret's `.dockerconfigjson`) holds for
    `registry` (HOST[:PORT]), from `username`/`password` or the base64 `auth`; AuthError naming `source` if none."""
    try:
        auths = json.loads(text).get("auths")
    except (ValueError, AttributeError):
        raise AuthError(f"{source} is not a docker config.json: expected JSON with an \"auths\" mapping.") from None
    if not isinstance(auths, dict):
        raise AuthError(f"{source} has no \"auths\" mapping: expected {{\"auths\": {{\"{registry}\": {{...}}}}}}.")
    entries = {_server(name): entry for name, entry in auths.items() if isinstance(entry, dict)}
    entry = entries.get(registry)
    if entry is None:
        raise AuthError(f"{source} holds credentials for {sorted(entries) or 'no registry'}, not for {registry}: "
                        f"name the pull Secret for {registry}.")
    username, password = entry.get("username"), entry.get("password")
    if not (isinstance(username, str) and isinstance(password, str) and username and password):
        try:
            username, _, password = base64.b64decode(str(entry.get("auth", "")), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username = password = ""
    if not (username and password):
        raise AuthError(f"{source} has an entry for {registry} without a username and password (or `auth`).")
    return Credentials(username, password, source=source)


def _server(name: str) -> str:
    """A docker config's server key as HOST[:PORT]: `https://host/v1/` and `host` name the same registry."""
    return name.split("://", 1)[-1].split("/", 1)[0]
