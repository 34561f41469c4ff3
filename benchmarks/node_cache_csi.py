"""Model starts through the node cache's CSI plugin (`shipway model csi-node`) against today's cold start.

Run by hand, as root (the plugin bind-mounts): `python benchmarks/node_cache_csi.py [--size-gib 2]`. Needs
Debian's `docker-registry` on PATH; starts it on 127.0.0.1 with htpasswd, pushes one large file of random
bytes, and measures, in one run:

- cold (the peer): what a model pod does without the cache, its init container's `shipway model pull
  REF@DIGEST DEST` process into an empty folder: every byte from the registry, verified, written;
- CSI cold: the first NodePublishVolume of the digest on a node with an empty cache, answered by a running
  `shipway model csi-node` (the kubelet's call while the pod starts): credentials checked, the artifact pulled
  into the cache and verified, then bind-mounted read-only at the pod's target;
- CSI warm: NodePublishVolume of the same digest for a new pod on that node: credentials checked with the
  registry, then a bind mount; no byte copied.

The registry is on the raw loopback, as near as the cache: the case least kind to a cache. The target is a
warm start at least 10 times faster than the cold one. The load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artifact_throughput import MIB, _start_registry, _write_random  # noqa: E402

TARGET_RATIO = 10.0
USER, PASSWORD = "bench", "bench-password"


def _env() -> dict[str, str]:
    return {**os.environ, "SHIPWAY_REGISTRY_USERNAME": USER, "SHIPWAY_REGISTRY_PASSWORD": PASSWORD,
            "SHIPWAY_PLAIN_HTTP": "1", "NO_COLOR": "1", "COLUMNS": "200"}


def _shipway(*args: str) -> tuple[float, str]:
    """Seconds one `shipway ...` process takes, start-up included, and its output."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shipway", *args], capture_output=True, text=True, timeout=3600,
                          env=_env())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"shipway {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


class Plugin:
    """One `shipway model csi-node` process and a gRPC channel to its socket."""

    def __init__(self, workdir: Path, registry: str) -> None:
        import grpc

        from shipway.artifacts.csi import messages

        self.messages = messages
        self.kubelet = workdir / "kubelet"
        (self.kubelet / "pods").mkdir(parents=True)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="csi-bench-", dir="/tmp"))
        self.socket = self.socket_dir / "csi.sock"
        self.log = (workdir / "csi-node.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shipway", "model", "csi-node", "--endpoint", f"unix://{self.socket}", "--dir",
             str(workdir / "node-cache"), "--max-size", "64Gi", "--registry", registry, "--plain-http",
             "--node-id", "bench-node", "--kubelet-dir", str(self.kubelet)],
            stdout=self.log, stderr=subprocess.STDOUT, env=_env())
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"csi-node did not start: {(workdir / 'csi-node.log').read_text()}")
            time.sleep(0.05)
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.call("/csi.v1.Identity/Probe", messages.message_class("ProbeRequest")())

    def call(self, method: str, request: Any) -> Any:
        request_class, response_class = self.messages.method_paths()[method]
        stub = self.channel.unary_unary(method, request_serializer=request_class.SerializeToString,
                                        response_deserializer=response_class.FromString)
        return stub(request, timeout=3600)

    def target(self, pod: str) -> Path:
        return self.kubelet / "pods" / pod / "volumes" / "kubernetes.io~csi" / "model" / "mount"

    def publish(self, artifact: str, pod: str, registry: str) -> float:
        """Seconds the kubelet's NodePublishVolume takes for a new pod, until the model is readable there."""
        target = self.target(pod)
        target.parent.mkdir(parents=True)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = self.messages.NodePublishVolumeRequest(
            volume_id=f"csi-{pod}", target_path=str(target), readonly=True,
            secrets={".dockerconfigjson": json.dumps({"auths": {registry: {"auth": token}}})},
            volume_context={"artifact": artifact, "maxSize": "64Gi", "csi.storage.k8s.io/ephemeral": "true"})
        request.volume_capability.mount.SetInParent()
        started = time.perf_counter()
        self.call("/csi.v1.Node/NodePublishVolume", request)
        seconds = time.perf_counter() - started
        if not (target / "model.safetensors").is_file():
            sys.exit(f"NodePublishVolume returned, but {target} holds no model")
        return seconds

    def unpublish(self, pod: str) -> None:
        request = self.messages.message_class("NodeUnpublishVolumeRequest")(
            volume_id=f"csi-{pod}", target_path=str(self.target(pod)))
        self.call("/csi.v1.Node/NodeUnpublishVolume", request)

    def stop(self) -> None:
        self.channel.close()
        self.process.terminate()
        self.process.wait(30)
        self.log.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=2.0)
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the CSI plugin bind-mounts (mount(2) needs CAP_SYS_ADMIN)")
    size = int(options.size_gib * 1024 * MIB)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="shipway-bench-csi-") as scratch:
        workdir = Path(scratch)
        need = 4 * size + 512 * MIB  # the registry's copy, the source, the cold pod, the node cache
        if shutil.disk_usage(workdir).free < need:
            sys.exit(f"needs {need / MIB:.0f} MiB free under {workdir}")
        registry, host = _start_registry(workdir, (USER, PASSWORD))
        plugin = None
        times: dict[str, float] = {}
        try:
            model = workdir / "model"
            model.mkdir()
            _write_random(model / "model.safetensors", size)
            _, pushed = _shipway("model", "push", str(model), f"oci://{host}/team/llm:1.0.0")
            shutil.rmtree(model)
            digest = re.search(r"@(sha256:[0-9a-f]{64})", pushed)
            if digest is None:
                sys.exit(f"no digest in the push's output:\n{pushed}")
            artifact = f"oci://{host}/team/llm@{digest.group(1)}"
            times["cold"], pulled = _shipway("model", "pull", artifact, str(workdir / "pod-cold" / "model"))
            in_process = re.search(r" in ([\d.]+) s", pulled)
            times["cold, pull only"] = float(in_process.group(1)) if in_process else times["cold"]
            shutil.rmtree(workdir / "pod-cold")
            plugin = Plugin(workdir, host)
            times["CSI cold"] = plugin.publish(artifact, "pod-1", host)
            times["CSI warm"] = plugin.publish(artifact, "pod-2", host)
            same_inode = ((plugin.target("pod-1") / "model.safetensors").stat().st_ino
                          == (plugin.target("pod-2") / "model.safetensors").stat().st_ino)
            for pod in ("pod-1", "pod-2"):
                plugin.unpublish(pod)
        finally:
            if plugin is not None:
                plugin.stop()
            registry.kill()
            registry.wait()
    load_after = os.getloadavg()
    ratio = times["cold"] / times["CSI warm"]
    print(f"artifact: one file of {size / MIB:.0f} MiB random bytes; registry: docker-registry on {host} with "
          f"htpasswd; cold: a `shipway model pull` process; CSI: NodePublishVolume on a running `shipway model "
          f"csi-node`; {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"\n{'start':18}{'seconds':>10}{'cold / this':>13}")
    for name, seconds in times.items():
        print(f"{name:18}{seconds:10.3f}{times['cold'] / seconds:12.1f}x")
    print(f"both pods' model.safetensors are one inode (no copy): {same_inode}")
    met = ratio >= TARGET_RATIO and same_inode
    print(f"target: CSI warm start >= {TARGET_RATIO:g}x faster than cold: {'met' if met else 'NOT met'} ({ratio:.1f}x;"
          f" {times['cold, pull only'] / times['CSI warm']:.1f}x against the pull without its process start-up)")
    print(json.dumps({"artifact_bytes": size, "cpus": os.cpu_count(), "load_average_before": load_before,
                      "load_average_after": load_after, "seconds": times, "ratio_cold_over_csi_warm": ratio,
                      "one_inode": same_inode, "target_met": met}))
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
