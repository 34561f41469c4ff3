"""Credential precedence and model.yaml metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.artifacts.auth import resolve_credentials
from shipway.artifacts.errors import ArtifactError, AuthError
from shipway.artifacts.layout import PASSWORD_ENV, USERNAME_ENV, ModelMetadata
from shipway.artifacts.metadata import describe_model, read_model_file

ENV = {USERNAME_ENV: "env-user", PASSWORD_ENV: "env-pass"}


def test_flags_beat_environment_which_beats_docker_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{}")
    from_flags = resolve_credentials("flag-user", "flag-pass", config, ENV)
    assert (from_flags.username, from_flags.source) == ("flag-user", "--username/--password")
    from_env = resolve_credentials(None, None, config, ENV)
    assert (from_env.username, from_env.password) == ("env-user", "env-pass")
    from_config = resolve_credentials(None, None, config, {})
    assert from_config.docker_config == config and from_config.username is None
    from_docker_env = resolve_credentials(environ={"DOCKER_CONFIG": str(tmp_path)})
    assert from_docker_env.docker_config == config


def test_half_given_credentials_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="both"):
        resolve_credentials("user", None, None, {})
    with pytest.raises(AuthError, match=PASSWORD_ENV):
        resolve_credentials(environ={USERNAME_ENV: "user"})
    with pytest.raises(AuthError, match="not a file"):
        resolve_credentials(docker_config=tmp_path / "missing.json", environ={})


def test_model_yaml_supplies_annotations_and_the_drift_profile(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(
        "name: churn\nversion: 2\nruntime: {kind: xgboost}\n"
        "training: {data_digest: sha256:aa}\ngate: {report_digest: sha256:bb}\n"
        "drift: {reference_profile: profiles/ref.json}\nunknown_key: ignored\n"
    )
    found = read_model_file(tmp_path / "model.yaml")
    assert found.metadata == ModelMetadata("churn", "2", "xgboost", "sha256:aa", "sha256:bb")
    metadata, drift = describe_model(tmp_path, None, ModelMetadata(version="3"))
    assert metadata.version == "3" and metadata.name == "churn"
    assert drift == tmp_path / "profiles" / "ref.json"


def test_a_broken_model_yaml_is_named(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ArtifactError, match="model.yaml: expected a mapping"):
        read_model_file(tmp_path / "model.yaml")
    assert describe_model(tmp_path / "nothing", None, ModelMetadata(name="x")) == (ModelMetadata(name="x"), None)
