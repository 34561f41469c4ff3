"""The contract between the render and the node cache's CSI plugin (shipway.artifacts.csi), held against the
plugin's own code on every example platform with every example model:

- one driver name: the CSIDriver, the profile, every model pod's volume, the plugin socket's folder and
  shipway.artifacts.csi.DRIVER;
- the DaemonSet's command line parses with the real `shipway model csi-node`, each value where the pod puts
  the thing it names (the cache folder, the kubelet's folder, the socket);
- every csi volume the render writes is one the plugin accepts: its attributes pass the plugin's own checks
  for its --registry, and the team pull secret the platform writes holds credentials for that host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from shipway.artifacts import csi
from shipway.artifacts.csi import node
from shipway.cli import app
from shipway.delivery.errors import RenderRefused
from shipway.delivery.render import render
from shipway.render import node_cache, registry
from shipway.spec import load_model_spec

MODELS = Path(__file__).resolve().parents[1] / "delivery" / "models"
DIGEST = "sha256:" + "7e" * 32
# What the kubelet adds to an inline volume's attributes with podInfoOnMount (pkg/volume/csi/csi_mounter.go).
KUBELET_ATTRIBUTES = {"csi.storage.k8s.io/pod.name": "m-0", "csi.storage.k8s.io/pod.namespace": "fraud-prod",
                      "csi.storage.k8s.io/pod.uid": "0f0e", "csi.storage.k8s.io/serviceAccount.name": "default",
                      "csi.storage.k8s.io/ephemeral": "true"}


def _plugin_pod(synthesised) -> dict[str, Any]:
    [daemon_set] = [d for d in synthesised.kind("DaemonSet") if d["metadata"]["namespace"] == node_cache.NAMESPACE]
    return daemon_set["spec"]["template"]["spec"]


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in pod["containers"] if c["name"] == name]
    return found


def _rollouts(synthesised, digest: str | None = DIGEST) -> list[dict[str, Any]]:
    """The Rollout of every example model for every team and environment, rendered by digest as promote
    renders it (or by tag), with the platform's pull secret rather than a model's own Secret."""
    blueprint, profile = synthesised.blueprint, synthesised.result.profile
    found = []
    for path in sorted(MODELS.glob("*.yaml")):
        spec = load_model_spec(path).model_copy(update={"artifact_credentials_secret": None})
        for team in blueprint.teams:
            for env in blueprint.team_environments(team):
                try:
                    objects = render(spec.model_copy(update={"team": team.name}), profile, env, None,
                                     artifact_digest=digest)
                except RenderRefused:
                    continue  # e.g. a GPU model on a team without GPU pools
                found.append(objects[0])
    return found


def _csi_volumes(synthesised) -> list[dict[str, Any]]:
    """The csi volume of every example model rendered by digest, for every team."""
    return [volume["csi"] for rollout in _rollouts(synthesised)
            for volume in rollout["spec"]["template"]["spec"]["volumes"] if "csi" in volume]


def _parsed_args(args: list[str]) -> tuple[Any, dict[str, Any]]:
    """The command `shipway ARGS` runs and its parsed parameters, parsed by the real CLI without running it."""
    group = get_command(app)
    model = group.get_command(group.make_context("shipway", list(args)), args[0])  # type: ignore[attr-defined]
    assert model is not None, f"`shipway {args[0]}` is no command"
    command = model.get_command(model.make_context(args[0], list(args[1:])), args[1])
    assert command is not None, f"`shipway {args[0]} {args[1]}` is no command"
    return command, command.make_context(args[1], list(args[2:])).params


def test_one_driver_name_everywhere(each_blueprint) -> None:
    assert node_cache.DRIVER == csi.DRIVER
    assert [d["metadata"]["name"] for d in each_blueprint.kind("CSIDriver")] == [csi.DRIVER]
    assert each_blueprint.result.profile["registry"]["nodeCache"]["driver"] == csi.DRIVER
    volumes = _csi_volumes(each_blueprint)
    assert volumes, "no example model mounts through the node cache"
    assert {volume["driver"] for volume in volumes} == {csi.DRIVER}
    pod = _plugin_pod(each_blueprint)
    [socket_dir] = [v["hostPath"]["path"] for v in pod["volumes"] if v["name"] == "socket-dir"]
    assert socket_dir == f"/var/lib/kubelet/plugins/{csi.DRIVER}"


def test_the_plugins_command_line_parses_with_the_real_cli_and_names_what_the_pod_mounts(each_blueprint) -> None:
    pod = _plugin_pod(each_blueprint)
    plugin = _container(pod, "plugin")
    args = plugin["args"]
    command, params = _parsed_args(args)
    # Every option the render writes is one the command has (a renamed option would otherwise crash-loop).
    names = {name for parameter in command.params for name in getattr(parameter, "opts", [])}
    assert {arg.split("=")[0] for arg in args[2:] if arg.startswith("--")} <= names
    mounts = {m["name"]: m for m in plugin["volumeMounts"]}
    assert str(params["cache_dir"]) == mounts["cache"]["mountPath"]
    # The kubelet's folder: the plugin requires <kubelet-dir>/pods, mounted at the host's own path.
    assert str(Path(params["kubelet_dir"]) / "pods") == mounts["pods-dir"]["mountPath"]
    assert node.endpoint_path(params["endpoint"]).parent == Path(mounts["socket-dir"]["mountPath"])
    assert params["node_id"] == "$(NODE_NAME)"
    assert params["registry"] == registry.server(each_blueprint.blueprint)
    assert params["plain_http"] is (each_blueprint.blueprint.registry.type == "zot")
    assert params["max_size"] == each_blueprint.blueprint.registry.node_cache.max_size


def test_every_csi_volume_the_render_writes_is_one_the_plugin_accepts(each_blueprint) -> None:
    """The plugin's --registry is the host of every platform artifact the render mounts, and the team pull
    secret the platform writes (registry.docker_config_json, keyed by registry.server) holds its credentials."""
    blueprint = each_blueprint.blueprint
    args = _container(_plugin_pod(each_blueprint), "plugin")["args"]
    plugin_registry = args[args.index("--registry") + 1]
    secret = {node.PULL_SECRET_KEY: registry.docker_config_json(registry.server(blueprint), "fraud-pull", "pw")}
    for volume in _csi_volumes(each_blueprint):
        attributes = {**volume["volumeAttributes"], **KUBELET_ATTRIBUTES}
        artifact = node.parse_attributes(attributes, plugin_registry)
        assert artifact.reference.digest == DIGEST and artifact.max_bytes
        assert volume["readOnly"] is True
        assert volume["nodePublishSecretRef"] == {"name": registry.PULL_SECRET}
        credentials = node.registry_credentials(secret, plugin_registry)
        assert (credentials.username, credentials.password) == ("fraud-pull", "pw")


def test_the_plugins_registry_is_the_host_of_every_platform_artifact_the_render_names(each_blueprint) -> None:
    """By digest (the csi volume) or by tag (the init container's pull), every artifact on the platform's
    registry that a rendered model names is on the one host the plugin pulls from."""
    args = _container(_plugin_pod(each_blueprint), "plugin")["args"]
    plugin_registry = args[args.index("--registry") + 1]
    rollouts = _rollouts(each_blueprint) + _rollouts(each_blueprint, digest=None)
    hosts = {rollout["metadata"]["annotations"]["shipway.dev/artifact"].removeprefix("oci://").split("/")[0]
             for rollout in rollouts}
    assert hosts == {plugin_registry}
    for rollout in rollouts:
        for container in rollout["spec"]["template"]["spec"].get("initContainers", []):
            assert container["command"][3].removeprefix("oci://").split("/")[0] == plugin_registry


@pytest.mark.parametrize("other", ["registry.example.com", "zot.shipway-registry.svc.cluster.local:5001"])
def test_the_plugin_would_refuse_an_artifact_of_another_host(kind_dev, other: str) -> None:
    """The other side of the check above: the plugin's check is real, so agreeing with it means something."""
    [volume] = _csi_volumes(kind_dev)[:1]
    args = _container(_plugin_pod(kind_dev), "plugin")["args"]
    plugin_registry = args[args.index("--registry") + 1]
    moved = volume["volumeAttributes"]["artifact"].replace(plugin_registry, other)
    with pytest.raises(node.CsiError, match="this node's cache pulls"):
        node.parse_attributes({**volume["volumeAttributes"], "artifact": moved}, plugin_registry)
    assert json.loads(registry.docker_config_json(registry.server(kind_dev.blueprint), "u", "p"))["auths"].keys() == {
        plugin_registry}
