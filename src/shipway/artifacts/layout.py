"""The Shipway model-artifact layout: media types, annotations, references, the init container.

Pure and import-light (no oras, no requests) so that the manifest renderer and
the CLI's start-up can use it. File names the ModelSpec also uses come from shipway.spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from shipway.artifacts.errors import BadReferenceError
from shipway.spec.model import REFERENCE_PROFILE_FILE

ARTIFACT_TYPE = "application/vnd.shipway.model.v1"
CONFIG_MEDIA_TYPE = "application/vnd.shipway.model.config.v1+json"
FILE_MEDIA_TYPE = "application/vnd.shipway.model.file.v1"
BUNDLE_MEDIA_TYPE = "application/vnd.shipway.model.bundle.v1.tar"
DRIFT_PROFILE_MEDIA_TYPE = "application/vnd.shipway.model.drift-profile.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_NAME = "dev.shipway.model.name"
ANNOTATION_VERSION = "dev.shipway.model.version"
ANNOTATION_FRAMEWORK = "dev.shipway.model.framework"
ANNOTATION_TRAINING_DATA_DIGEST = "dev.shipway.model.training-data-digest"
ANNOTATION_GATE_REPORT_DIGEST = "dev.shipway.model.gate-report-digest"
ANNOTATION_BUNDLE_FILES = "dev.shipway.bundle.files"

# Files at least this large get a layer of their own, so a new model version
# that changes only small files re-uploads nothing big.
LARGE_FILE_BYTES = 16 * 1024 * 1024

# The name the pulled directory keeps the manifest under, so a later pull of
# the same digest can tell that the directory is already complete.
MARKER_FILE = ".shipway-artifact.json"
# A file of this name at the artifact's root is the drift-profile layer when no other path is named.
DRIFT_PROFILE_DEFAULT_NAME = REFERENCE_PROFILE_FILE

USERNAME_ENV = "SHIPWAY_REGISTRY_USERNAME"
PASSWORD_ENV = "SHIPWAY_REGISTRY_PASSWORD"
DOCKER_CONFIG_ENV = "DOCKER_CONFIG"

_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A parsed `oci://REGISTRY/REPOSITORY:TAG` or `...@sha256:DIGEST` reference."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """The tag or digest that names the manifest."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        """The same repository, pinned to one manifest digest."""
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        suffix = f"@{self.digest}" if self.digest else f":{self.tag}"
        return f"oci://{self.registry}/{self.repository}{suffix}"


def parse_reference(text: str) -> Reference:
    """Parse a registry reference; the registry host must be explicit (no Docker Hub default)."""
    body = text.removeprefix("oci://")
    registry, slash, rest = body.partition("/")
    looks_like_host = "." in registry or ":" in registry or registry == "localhost"
    if not slash or not rest or not looks_like_host:
        raise BadReferenceError(
            f"Got {text!r}: expected oci://REGISTRY/REPOSITORY:TAG, "
            "with an explicit registry host such as 127.0.0.1:5000 or registry.example.com."
        )
    digest = None
    tag = None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _DIGEST.match(digest):
            raise BadReferenceError(f"Got digest {digest!r} in {text!r}: expected sha256: and 64 hex digits.")
    elif ":" in rest.rsplit("/", 1)[-1]:
        rest, _, tag = rest.rpartition(":")
        if not _TAG.match(tag):
            raise BadReferenceError(
                f"Got tag {tag!r} in {text!r}: a tag is up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -."
            )
    if not _REPOSITORY.match(rest):
        raise BadReferenceError(
            f"Got repository {rest!r} in {text!r}: use lower-case path components separated by '/'."
        )
    if tag is None and digest is None:
        raise BadReferenceError(f"Got {text!r} without a tag or digest: add :VERSION (for example :1.0.0).")
    return Reference(registry, rest, tag, digest)


@dataclass(frozen=True)
class ModelMetadata:
    """What the manifest annotations say about a model (taken from model.yaml or flags)."""

    name: str | None = None
    version: str | None = None
    framework: str | None = None
    training_data_digest: str | None = None
    gate_report_digest: str | None = None

    def annotations(self) -> dict[str, str]:
        """Manifest annotations for the fields that are set."""
        pairs = {
            ANNOTATION_NAME: self.name,
            ANNOTATION_VERSION: self.version,
            ANNOTATION_FRAMEWORK: self.framework,
            ANNOTATION_TRAINING_DATA_DIGEST: self.training_data_digest,
            ANNOTATION_GATE_REPORT_DIGEST: self.gate_report_digest,
        }
        return {key: value for key, value in pairs.items() if value}


def layer_media_type(relative_path: str, size: int, drift_profile: str | None) -> str:
    """Which kind of layer a file belongs in: the drift profile, its own layer, or the bundle."""
    if drift_profile is not None and relative_path == drift_profile:
        return DRIFT_PROFILE_MEDIA_TYPE
    return FILE_MEDIA_TYPE if size >= LARGE_FILE_BYTES else BUNDLE_MEDIA_TYPE


def is_digest(text: object) -> bool:
    """Whether a manifest's digest field is a sha256 digest, safe to put in a URL or a file name."""
    return isinstance(text, str) and _DIGEST.match(text) is not None


def safe_relative_path(title: str) -> PurePosixPath:
    """A layer title as a relative path that cannot escape the destination directory."""
    path = PurePosixPath(title)
    if not title or path.is_absolute() or ".." in path.parts or "\\" in title or "\0" in title or not path.parts:
        raise BadReferenceError(f"Got layer title {title!r}: a title must be a relative path inside the model.")
    return path


def init_container_args(
    ref: str,
    mount_path: str = "/models",
    subdirectory: str = "model",
    plain_http: bool = False,
    docker_config: str | None = None,
) -> list[str]:
    """The init container's command line: `shipway model pull`, with its digest checks, into the volume.

    The artifact lands in a subdirectory because the pull renames a finished
    temporary directory into place, and a volume's mount point cannot be renamed.
    """
    parse_reference(ref)
    args = ["shipway", "model", "pull", ref, f"{mount_path.rstrip('/')}/{subdirectory}"]
    if plain_http:
        args.append("--plain-http")
    if docker_config:
        args += ["--docker-config", docker_config]
    return args


def init_container(
    ref: str,
    image: str,
    mount_path: str = "/models",
    volume_name: str = "model",
    subdirectory: str = "model",
    plain_http: bool = False,
    credentials_secret: str | None = None,
    docker_config: str | None = None,
) -> dict[str, object]:
    """A Kubernetes init container that pulls and verifies the model into the shared volume.

    `credentials_secret` names a Secret with `username` and `password` keys; `docker_config` is the
    path of a docker config.json the caller mounts (a dockerconfigjson pull secret), used otherwise.
    """
    container: dict[str, object] = {
        "name": "fetch-model",
        "image": image,
        "command": init_container_args(ref, mount_path, subdirectory, plain_http,
                                       None if credentials_secret else docker_config),
        "volumeMounts": [{"name": volume_name, "mountPath": mount_path}],
    }
    if credentials_secret:
        container["env"] = [
            {"name": env, "valueFrom": {"secretKeyRef": {"name": credentials_secret, "key": key}}}
            for env, key in ((USERNAME_ENV, "username"), (PASSWORD_ENV, "password"))
        ]
    return container
