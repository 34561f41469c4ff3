"""The artifact layout: references, annotations, layer kinds and the init container."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipway.artifacts.errors import BadReferenceError
from shipway.artifacts.layout import (
    ANNOTATION_FRAMEWORK,
    ANNOTATION_NAME,
    BUNDLE_MEDIA_TYPE,
    DRIFT_PROFILE_MEDIA_TYPE,
    FILE_MEDIA_TYPE,
    LARGE_FILE_BYTES,
    PASSWORD_ENV,
    USERNAME_ENV,
    ModelMetadata,
    Reference,
    init_container,
    init_container_args,
    layer_media_type,
    parse_reference,
    safe_relative_path,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci://127.0.0.1:5000/team/model:1.0.0", Reference("127.0.0.1:5000", "team/model", "1.0.0")),
        ("registry.example.com/a/b/c:v2", Reference("registry.example.com", "a/b/c", "v2")),
        ("localhost/m@" + DIGEST, Reference("localhost", "m", None, DIGEST)),
        ("zot.shipway.svc:5000/acme.models/x:1", Reference("zot.shipway.svc:5000", "acme.models/x", "1")),
    ],
)
def test_references_parse(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team/model:1", "explicit registry host"),
        ("oci://127.0.0.1:5000/team/model", "without a tag or digest"),
        ("oci://127.0.0.1:5000/Team/model:1", "lower-case"),
        ("oci://127.0.0.1:5000/team/model:-x", "Got tag '-x'"),
        ("oci://127.0.0.1:5000/team/model@sha256:zz", "64 hex digits"),
    ],
)
def test_bad_references_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BadReferenceError, match=message):
        parse_reference(text)


@given(
    repository=st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_reference_round_trips_through_its_string(repository: str, tag: str) -> None:
    reference = Reference("127.0.0.1:5000", repository, tag)
    assert parse_reference(str(reference)) == reference
    pinned = reference.with_digest(DIGEST)
    assert parse_reference(str(pinned)) == pinned


def test_annotations_hold_only_the_fields_that_are_set() -> None:
    assert ModelMetadata(name="iris", framework="sklearn").annotations() == {
        ANNOTATION_NAME: "iris",
        ANNOTATION_FRAMEWORK: "sklearn",
    }


def test_large_files_get_their_own_layer_and_the_drift_profile_always_does() -> None:
    assert layer_media_type("w.bin", LARGE_FILE_BYTES, None) == FILE_MEDIA_TYPE
    assert layer_media_type("w.bin", LARGE_FILE_BYTES - 1, None) == BUNDLE_MEDIA_TYPE
    assert layer_media_type("ref.json", 10, "ref.json") == DRIFT_PROFILE_MEDIA_TYPE


@pytest.mark.parametrize("title", ["", "/etc/passwd", "../x", "a/../../x", "a\\b"])
def test_layer_titles_cannot_escape_the_destination(title: str) -> None:
    with pytest.raises(BadReferenceError):
        safe_relative_path(title)


def test_init_container_pulls_into_a_subdirectory_of_the_volume_with_the_cli() -> None:
    ref = "oci://zot.registry.svc:5000/team/iris@" + DIGEST
    assert init_container_args(ref, plain_http=True) == ["shipway", "model", "pull", ref, "/models/model", "--plain-http"]
    container = init_container(ref, "ghcr.io/shipway-dev/shipway:0.1.0", credentials_secret="registry-creds")
    assert container["command"] == ["shipway", "model", "pull", ref, "/models/model"]
    assert container["volumeMounts"] == [{"name": "model", "mountPath": "/models"}]
    assert container["env"] == [
        {"name": USERNAME_ENV, "valueFrom": {"secretKeyRef": {"name": "registry-creds", "key": "username"}}},
        {"name": PASSWORD_ENV, "valueFrom": {"secretKeyRef": {"name": "registry-creds", "key": "password"}}},
    ]


def test_init_container_refuses_a_bad_reference() -> None:
    with pytest.raises(BadReferenceError):
        init_container_args("team/iris:1")
