"""The git trailers `shipway promote` writes into each GitOps commit and `shipway dora` reads back.

Defined once here so the writer and the reader cannot drift apart. Trailers are git's own
`Key: value` lines at the end of a commit message (git-interpret-trailers), so any git tool reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MODEL = "Shipway-Model"
TEAM = "Shipway-Team"
VERSION = "Shipway-Version"
ENVIRONMENT = "Shipway-Environment"
NAMESPACE = "Shipway-Namespace"
REPLACES = "Shipway-Replaces"
SOURCE_COMMIT = "Shipway-Source-Commit"
SOURCE_TIME = "Shipway-Source-Time"
GATE = "Shipway-Gate"
ARTIFACT = "Shipway-Artifact"
ARTIFACT_DIGEST = "Shipway-Artifact-Digest"

ORDER = (MODEL, TEAM, VERSION, ENVIRONMENT, NAMESPACE, REPLACES, SOURCE_COMMIT, SOURCE_TIME, GATE, ARTIFACT,
         ARTIFACT_DIGEST)
# What a reader needs before a commit counts as a promotion.
REQUIRED = (MODEL, TEAM, VERSION, ENVIRONMENT)
NONE = "none"


@dataclass(frozen=True)
class SourceCommit:
    """The model repository's commit a promotion ships, and when it was committed (ISO 8601)."""

    sha: str
    time: str


def trailer_block(values: Mapping[str, str | None]) -> str:
    """The trailer paragraph, in a fixed order; an absent value is written as `none` so every key is present."""
    lines = []
    for key in ORDER:
        value = values.get(key)
        text = NONE if value is None or not str(value).strip() else " ".join(str(value).split())
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"


def digest_of(reference: str) -> str | None:
    """The sha256 digest an artifact reference pins (`...@sha256:HEX`), if it pins one."""
    _, at, digest = reference.rpartition("@")
    return digest if at and digest.startswith("sha256:") else None
