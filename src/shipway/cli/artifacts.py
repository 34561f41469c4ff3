"""`shipway model push|pull`: model artifacts in an OCI registry, a thin adapter over shipway.artifacts."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipway.cli._common import BadOption, console, guarded, registry_host

if TYPE_CHECKING:
    from shipway.artifacts.auth import Credentials
    from shipway.artifacts.transfer import TransferLimits

# Options shared by push and pull.
Username = Annotated[str | None, typer.Option("--username", "-u", help="Registry user (else env or docker config).")]
Password = Annotated[str | None, typer.Option("--password", "-p", help="Registry password.")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]
DockerConfig = Annotated[
    Path | None, typer.Option("--docker-config", help="A docker config.json to take credentials from.")
]
PlainHttp = Annotated[bool, typer.Option(
    "--plain-http", envvar="SHIPWAY_PLAIN_HTTP", show_envvar=True, help="Speak HTTP, not HTTPS (local registries)."
)]
MaxBlobSize = Annotated[str, typer.Option("--max-blob-size", help="Refuse a blob larger than this (e.g. 100Gi).")]
MaxManifestSize = Annotated[str, typer.Option("--max-manifest-size", help="Refuse a larger manifest (e.g. 4Mi).")]
Deadline = Annotated[float, typer.Option("--deadline", min=1, help="Seconds any one transfer may take in all.")]
MinRate = Annotated[str, typer.Option(
    "--min-rate", help="Abort a transfer slower than this many bytes/s over --rate-window (e.g. 64Ki).")]
RateWindow = Annotated[float, typer.Option("--rate-window", min=0.1, help="Seconds over which --min-rate is judged.")]


def _bytes(option: str, text: str) -> int:
    from shipway.artifacts.errors import BadOptionError
    from shipway.spec.base import quantity_value

    try:
        value = int(quantity_value(text))
    except ValueError:
        value = -1
    if value <= 0:
        raise BadOptionError(f"Got {option} {text!r}: expected a positive size such as 512Gi, 4Mi or 65536.")
    return value


# sun_path holds 108 bytes, the last a NUL (unix(7)).
SOCKET_PATH_MAX = 107


def _cache_bytes(text: str, cache_dir: Path) -> int:
    """--max-size as bytes: a share of the cache folder's filesystem ("40%"), or a size."""
    from shipway.artifacts.errors import BadOptionError
    from shipway.spec.base import disk_share

    try:
        share = disk_share(text)
    except ValueError as error:
        raise BadOptionError(f"--max-size: {error}, or give a size such as 200Gi.") from None
    if share is None:
        return _bytes("--max-size", text)
    cache_dir.mkdir(parents=True, exist_ok=True)
    disk = os.statvfs(cache_dir)
    return disk.f_blocks * disk.f_frsize * share // 100


def _limits(max_blob_size: str, max_manifest_size: str, deadline: float, min_rate: str,
            rate_window: float) -> TransferLimits:
    from shipway.artifacts.transfer import TransferLimits

    return TransferLimits(max_manifest_bytes=_bytes("--max-manifest-size", max_manifest_size),
                          max_blob_bytes=_bytes("--max-blob-size", max_blob_size), deadline_s=deadline,
                          min_rate_bytes_s=_bytes("--min-rate", min_rate), rate_window_s=rate_window)


def _stop_on_sigterm() -> None:
    """Kubernetes stops a container with SIGTERM: unwind like Ctrl-C, so no partial download is left."""
    def stop(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _credentials(username: str | None, password: str | None, password_stdin: bool, docker_config: Path | None) -> Credentials:
    from shipway.artifacts.auth import resolve_credentials

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    return resolve_credentials(username, password, docker_config)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


class _Bars:
    """Draws one rich progress bar per file being hashed or transferred."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.tasks: dict[str, int] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done)  # type: ignore[arg-type]


def push_command(
    source: Annotated[Path, typer.Argument(help="Model directory or single file.")],
    target: Annotated[str, typer.Argument(help="oci://REGISTRY/REPOSITORY:TAG")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite a tag that names other content.")] = False,
    model_yaml: Annotated[
        Path | None, typer.Option(help="The model's ModelSpec to annotate from (default: SOURCE/model.yaml).")
    ] = None,
    drift_profile: Annotated[
        Path | None,
        typer.Option(help="Reference drift profile, pushed as its own layer (default: the spec's drift.referenceProfile)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Model name annotation (default: the spec's name).")] = None,
    model_version: Annotated[str | None, typer.Option(help="Model version annotation (default: the tag).")] = None,
    framework: Annotated[
        str | None, typer.Option(help="Framework annotation, e.g. sklearn (default: the spec's runtime).")
    ] = None,
    training_data_digest: Annotated[str | None, typer.Option(help="Digest of the training data.")] = None,
    gate_report_digest: Annotated[str | None, typer.Option(help="Digest of the gate report.")] = None,
    chunk_mib: Annotated[int, typer.Option(min=1, max=512, help="Upload chunk size in MiB.")] = 32,
    username: Username = None,
    password: Password = None,
    password_stdin: PasswordStdin = False,
    docker_config: DockerConfig = None,
    plain_http: PlainHttp = False,
    deadline: Deadline = 6 * 3600.0,
    min_rate: MinRate = "64Ki",
    rate_window: RateWindow = 30.0,
) -> None:
    """Push a model as an OCI artifact; blobs the registry already has are not sent again."""
    _stop_on_sigterm()
    with guarded():
        from shipway.artifacts.layout import ModelMetadata, parse_reference
        from shipway.artifacts.metadata import describe_model
        from shipway.artifacts.push import push

        overrides = ModelMetadata(name, model_version, framework, training_data_digest, gate_report_digest)
        metadata, profile_from_yaml = describe_model(source, model_yaml, overrides, parse_reference(target).tag)
        credentials = _credentials(username, password, password_stdin, docker_config)
        bars = _Bars()
        with bars.progress:
            result = push(
                source,
                target,
                metadata=metadata,
                drift_profile=drift_profile or profile_from_yaml,
                force=force,
                plain_http=plain_http,
                credentials=credentials,
                chunk_bytes=chunk_mib * 1024 * 1024,
                progress=bars,
                limits=_limits("512Gi", "4Mi", deadline, min_rate, rate_window),
            )
        pinned = result.reference.with_digest(result.manifest_digest)
        if result.unchanged:
            console.print(f"[green]up to date[/]: {result.reference} already names this model ({pinned})")
            return
        skipped = sum(layer.size for layer in result.skipped)
        rate = result.bytes_uploaded / result.seconds / 1e6 if result.seconds else 0.0
        console.print(
            f"[green]pushed[/] {result.reference}\n  digest   {pinned}\n"
            f"  uploaded {len(result.uploaded)} blobs, {_size(result.bytes_uploaded)} ({rate:.0f} MB/s)\n"
            f"  skipped  {len(result.skipped)} blobs already in the registry, {_size(skipped)}"
        )


def pull_command(
    reference: Annotated[str, typer.Argument(help="oci://REGISTRY/REPOSITORY:TAG or ...@sha256:DIGEST")],
    destination: Annotated[Path, typer.Argument(help="Directory to create (must not exist unless --force).")],
    force: Annotated[bool, typer.Option("--force", help="Replace a destination that holds something else.")] = False,
    username: Username = None,
    password: Password = None,
    password_stdin: PasswordStdin = False,
    docker_config: DockerConfig = None,
    plain_http: PlainHttp = False,
    max_blob_size: MaxBlobSize = "512Gi",
    max_manifest_size: MaxManifestSize = "4Mi",
    deadline: Deadline = 6 * 3600.0,
    min_rate: MinRate = "64Ki",
    rate_window: RateWindow = 30.0,
    cache: Annotated[Path | None, typer.Option(
        "--cache", help="The node's model cache: blobs found there are not downloaded, others are kept there.")] = None,
    cache_max_size: Annotated[str, typer.Option(
        "--cache-max-size", help="Evict least recently used models to keep the cache under this size.")] = "100Gi",
    cache_keep: Annotated[float, typer.Option(
        "--cache-keep", min=0, help="Seconds after its last pull during which a model is never evicted.")] = 3600.0,
) -> None:
    """Pull a model, verifying every digest; the directory appears only once it is complete."""
    _stop_on_sigterm()
    with guarded():
        from shipway.artifacts.cache import NodeCache
        from shipway.artifacts.pull import pull
        from shipway.files import target_path

        destination = target_path(destination)
        limits = _limits(max_blob_size, max_manifest_size, deadline, min_rate, rate_window)
        node_cache = (NodeCache(cache, _bytes("--cache-max-size", cache_max_size), cache_keep)
                      if cache is not None else None)
        credentials = _credentials(username, password, password_stdin, docker_config)
        bars = _Bars()
        with bars.progress:
            result = pull(reference, destination, force=force, plain_http=plain_http, credentials=credentials,
                          progress=bars, limits=limits, cache=node_cache)
        pinned = result.reference.with_digest(result.manifest_digest)
        if result.up_to_date:
            console.print(f"[green]up to date[/]: {destination} already holds {pinned}")
            return
        console.print(
            f"[green]pulled[/] {pinned}\n  into     {destination}\n"
            f"  verified {len(result.files)} files, {_size(result.bytes_fetched)} in {result.seconds:.1f} s"
        )


def csi_node_command(
    cache_dir: Annotated[Path, typer.Option("--dir", help="The node's cache folder (the DaemonSet's hostPath).")],
    registry: Annotated[str, typer.Option(
        "--registry", help="HOST[:PORT] of the one registry the plugin pulls from; other hosts are refused.")],
    max_size: Annotated[str, typer.Option(
        "--max-size", help="Evict least recently used unmounted models to keep the cache under this: a share of "
        "the cache folder's filesystem (40%) or bytes (200Gi).")],
    node_id: Annotated[str, typer.Option("--node-id", help="This node's name, returned by NodeGetInfo.")],
    endpoint: Annotated[str, typer.Option(
        "--endpoint", help="The CSI socket, unix:///PATH (the kubelet's registrar points at it).")
    ] = "unix:///csi/csi.sock",
    kubelet_dir: Annotated[Path, typer.Option(
        "--kubelet-dir", help="The kubelet's root: every target path must lie under its pods/ folder.")
    ] = Path("/var/lib/kubelet"),
    plain_http: PlainHttp = False,
    deadline: Deadline = 6 * 3600.0,
    min_rate: MinRate = "64Ki",
    rate_window: RateWindow = 30.0,
) -> None:
    """Serve the node model cache as a CSI node plugin: bind-mount a pod's model, by digest, read-only from the cache.

    Every publish asks the registry, with the pod's own pull Secret, for the model; the first on a node pulls it into the cache, verified, and later ones mount it without a download.
    """
    with guarded():
        import logging
        import threading

        from shipway.artifacts.cache import NodeCache
        from shipway.artifacts.csi.node import NodeConfig, endpoint_path, serve_until

        try:
            socket = endpoint_path(endpoint)
        except ValueError:
            raise BadOption(f"Got --endpoint {endpoint!r}: expected unix:///PATH, e.g. --endpoint "
                            "unix:///csi/csi.sock") from None
        if len(os.fsencode(socket)) > SOCKET_PATH_MAX:
            raise BadOption(f"Got --endpoint {endpoint!r}: a unix socket's path is at most {SOCKET_PATH_MAX} bytes; "
                            "use a shorter one, e.g. unix:///csi/csi.sock")
        if socket.parent.exists() and not socket.parent.is_dir():
            raise BadOption(f"Got --endpoint {endpoint!r}: {socket.parent} is a file, not a folder for the socket")
        if not node_id.strip():
            raise BadOption("Got an empty --node-id: pass the node's name (the DaemonSet gives $(NODE_NAME)).")
        if not (kubelet_dir / "pods").is_dir():
            raise BadOption(f"Got --kubelet-dir {kubelet_dir}, which has no pods/ folder: pass the kubelet's root "
                            "(/var/lib/kubelet), mounted into the plugin at the same path.")
        registry = registry_host(registry, "--registry")
        limit = _cache_bytes(max_size, cache_dir)
        config = NodeConfig(NodeCache(cache_dir, limit, keep_recent_s=0.0), registry, node_id, kubelet_dir,
                            plain_http, _limits(str(limit), "4Mi", deadline, min_rate, rate_window))
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda _signal, _frame: stop.set())
        console.print(f"CSI node plugin for {registry} on {endpoint}, {cache_dir} up to {max_size} "
                      f"({_size(limit)})", highlight=False)
        try:
            serve_until(config, socket, stop)
        except KeyboardInterrupt:
            pass


def exists_command(
    reference: Annotated[str, typer.Argument(help="oci://REGISTRY/REPOSITORY:TAG or ...@sha256:DIGEST")],
    username: Username = None,
    password: Password = None,
    password_stdin: PasswordStdin = False,
    docker_config: DockerConfig = None,
    plain_http: PlainHttp = False,
) -> None:
    """Exit 0 and print the digest if the registry has REFERENCE, 1 if it has not; other failures exit 2 or more.

    CI asks this before pulling the production model, which the first release does not have yet.
    """
    with guarded():
        from shipway.artifacts.layout import parse_reference
        from shipway.artifacts.registry import RegistryClient

        parsed = parse_reference(reference)
        credentials = _credentials(username, password, password_stdin, docker_config)
        digest = RegistryClient(parsed.registry, plain_http=plain_http, credentials=credentials).manifest_digest(parsed)
    if digest is None:
        console.print(f"absent: {reference}", highlight=False)
        raise typer.Exit(1)
    console.print(str(parsed.with_digest(digest)), highlight=False)


def register(app: typer.Typer) -> None:
    """Add the `model` command group (push, pull, exists) to the app."""
    model = typer.Typer(name="model", help="Push and pull model artifacts in an OCI registry.", no_args_is_help=True)
    model.command("push")(push_command)
    model.command("pull")(pull_command)
    model.command("exists")(exists_command)
    model.command("csi-node")(csi_node_command)
    app.add_typer(model, name="model")
