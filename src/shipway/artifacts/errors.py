"""Errors a model push or pull reports to a user, each with what to do next."""

from __future__ import annotations

from shipway.errors import ShipwayError


class ArtifactError(ShipwayError):
    """Any failure to push or pull a model artifact."""

    exit_code = 3


class BadReferenceError(ArtifactError):
    """A registry reference, or a layer title inside a manifest, is malformed."""

    exit_code = 2


class BadOptionError(ArtifactError):
    """A command-line option has a value that cannot be used."""

    exit_code = 2


class AuthError(ArtifactError):
    """The registry refused the credentials, or wanted some and none were given."""

    exit_code = 4


class TagExistsError(ArtifactError):
    """The version tag already names different content and overwriting was not asked for."""

    exit_code = 5


class DigestMismatchError(ArtifactError):
    """A blob's bytes do not match the digest the manifest promises."""

    exit_code = 6


class RegistryUnavailableError(ArtifactError):
    """The registry could not be reached, or kept failing after every retry."""

    exit_code = 7
