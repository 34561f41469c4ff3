"""Credential precedence, and the annotations a model.yaml (its ModelSpec) gives a push."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.artifacts.auth import resolve_credentials
from shipway.artifacts.errors import AuthError
from shipway.artifacts.layout import PASSWORD_ENV, USERNAME_ENV, ModelMetadata
from shipway.artifacts.metadata import describe_model, read_model_file
from shipway.errors import SpecError
from shipway.spec.model import REFERENCE_PROFILE_FILE

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


SPEC = (
    "name: churn\nteam: growth\nversion: '2'\nruntime: xgboost\n"
    "drift: {referenceProfile: profiles/ref.json}\n"
)


def test_model_yaml_is_read_as_a_model_spec(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(SPEC)
    found = read_model_file(tmp_path / "model.yaml")
    assert found.metadata == ModelMetadata("churn", "2", "xgboost")
    assert found.drift_profile == "profiles/ref.json"


def test_flags_then_tag_then_spec_decide_the_annotations(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(SPEC)
    metadata, drift = describe_model(tmp_path, None, ModelMetadata(version="3", gate_report_digest="sha256:bb"), "9")
    assert metadata == ModelMetadata("churn", "3", "xgboost", None, "sha256:bb")
    # The profile is named inside the artifact, so it resolves against the model directory pushed.
    assert drift == tmp_path / "profiles" / "ref.json"
    assert describe_model(tmp_path, None, ModelMetadata(), "abc1234")[0].version == "abc1234"
    assert describe_model(tmp_path, None, ModelMetadata())[0].version == "2"


def test_a_spec_outside_the_artifact_names_the_profile_inside_it(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text("name: churn\nteam: growth\nversion: '1'\nruntime: sklearn\ndrift: {}\n")
    (tmp_path / "build").mkdir()
    metadata, drift = describe_model(tmp_path / "build", tmp_path / "model.yaml", ModelMetadata(framework="custom"))
    assert (metadata.framework, drift) == ("custom", tmp_path / "build" / REFERENCE_PROFILE_FILE)


def test_an_invalid_model_yaml_fails_as_promote_would(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="model.yaml:1:1: .*YAML mapping"):
        read_model_file(tmp_path / "model.yaml")
    (tmp_path / "model.yaml").write_text("name: churn\nversion: 2\nruntime: {kind: xgboost}\n")
    with pytest.raises(SpecError, match="team: required field is missing"):
        describe_model(tmp_path, None, ModelMetadata())
    assert describe_model(tmp_path / "nothing", None, ModelMetadata(name="x")) == (ModelMetadata(name="x"), None)
