"""Running the sidecar: its three listeners on one event loop, until cancelled."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web

from shipway.drift.profile import ReferenceProfile
from shipway.errors import ShipwayError
from shipway.sidecar.metrics import SidecarMetrics, SloThresholds
from shipway.sidecar.observer import Observer, ObserverSettings
from shipway.sidecar.proxy import Proxy, ProxySettings


@dataclass(frozen=True)
class SidecarConfig:
    """Everything one sidecar needs: addresses, the runtime, the model identity and its reference."""

    listen_host: str
    listen_port: int
    metrics_host: str
    metrics_port: int
    upstream: str
    model: str
    version: str
    feedback_host: str = "127.0.0.1"
    feedback_port: int = 9092
    # The runtime's own readiness route, which the sidecar's /readyz reports.
    runtime_ready_path: str = "/v2/health/ready"
    profile: ReferenceProfile | None = None
    # Features of the profile whose drift is watched; every profiled one when empty.
    features: tuple[str, ...] = ()
    observer: ObserverSettings = field(default_factory=ObserverSettings)
    thresholds: SloThresholds = field(default_factory=SloThresholds)
    timeout_seconds: float = 300.0

    def __post_init__(self) -> None:
        # Refused here, before anything listens, rather than when the observer is built.
        if self.features:
            if self.profile is None:
                raise ShipwayError("features to watch need a reference profile")
            self.profile.select(self.features)


@dataclass
class RunningSidecar:
    """A started sidecar: its proxy (for inspection in tests) and the runners to stop."""

    proxy: Proxy
    runners: tuple[web.AppRunner, ...]

    async def stop(self) -> None:
        """Stop every listener, then close the upstream session and finish queued bookkeeping."""
        for runner in self.runners:
            await runner.cleanup()
        await self.proxy.close()


async def start(config: SidecarConfig) -> RunningSidecar:
    """Start every listener on the running loop and return once they accept connections."""
    metrics = SidecarMetrics(config.model, config.version, config.thresholds)
    observer = Observer(metrics, config.profile, config.observer, config.features)
    proxy = Proxy(ProxySettings(upstream=config.upstream, timeout_seconds=config.timeout_seconds,
                                runtime_ready_path=config.runtime_ready_path), observer)
    await proxy.start()
    runners = []
    for app, host, port, listener in (
        (proxy.serving_app(), config.listen_host, config.listen_port, "serving"),
        (proxy.feedback_app(), config.feedback_host, config.feedback_port, "feedback"),
        (proxy.metrics_app(), config.metrics_host, config.metrics_port, None),
    ):
        # No access log lines: one per request would cost more than the proxying itself. The
        # access-log hook only counts what aiohttp refused before the application saw it.
        # auto_decompress=False: a gzip-encoded request is forwarded as the gzip bytes it came
        # with, not inflated bytes under a Content-Encoding header that no longer fits them.
        counting = {} if listener is None else {"access_log": logging.getLogger("shipway.sidecar.access"),
                                                "access_log_class": proxy.refusals_counter(listener)}
        runner = web.AppRunner(app, auto_decompress=False, **({"access_log": None} | counting))
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    return RunningSidecar(proxy=proxy, runners=tuple(runners))


async def serve(config: SidecarConfig) -> None:
    """Run the sidecar until the task is cancelled (Ctrl-C or SIGTERM in the CLI)."""
    running = await start(config)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()
