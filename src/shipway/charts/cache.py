"""The local chart cache: one folder per chart and version, `<name>-<version>`, as `helm pull --untar` lays it out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway.errors import missing_extra

ENV = "SHIPWAY_CHARTS"
PULL_HINT = "run `shipway charts pull` on a machine with network access, or pass --charts DIR / set SHIPWAY_CHARTS"


def default_dir() -> Path:
    """Where `shipway charts pull` writes and synth looks: $SHIPWAY_CHARTS, else the user cache folder."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipway" / "charts"


def chosen_dir(charts: Path | None, no_charts: bool) -> Path | None:
    """The chart cache a command renders through: --charts, else the default folder; None with --no-charts."""
    return None if no_charts else (charts or default_dir())


def chart_dir_name(chart: str, version: str) -> str:
    """The cache folder of one chart at one version."""
    return f"{chart}-{version}"


@dataclass(frozen=True)
class Absent:
    """A chart the cache cannot render: not there at all, or there without some of its subcharts."""

    chart: str
    version: str
    repo: str
    missing_subcharts: tuple[str, ...] = ()

    def __str__(self) -> str:
        what = f"{self.chart} {self.version} ({self.repo})"
        if self.missing_subcharts:
            return f"{what} lacks subcharts {', '.join(self.missing_subcharts)} under charts/"
        return what


class ChartCache:
    """A folder of unpacked charts."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def locate(self, chart: str, version: str, repo: str = "") -> Path | Absent:
        """The chart's folder, or why it cannot be rendered from this cache."""
        folder = self.root / chart_dir_name(chart, version)
        if not (folder / "Chart.yaml").is_file():
            return Absent(chart, version, repo)
        missing = missing_subcharts(folder)
        if missing:
            return Absent(chart, version, repo, missing)
        return folder


def helm_sdk() -> Any:
    """The helm_python module, or an error saying how to install it."""
    try:
        import helm_python
    except ImportError as error:
        raise (missing_extra(error) or error) from None
    return helm_python


def missing_subcharts(folder: Path) -> tuple[str, ...]:
    """Dependencies Chart.yaml declares that charts/ does not hold (Helm refuses to install such a chart)."""
    helm = helm_sdk()
    return tuple(f"{dep['name']} {dep['version']}" for dep in helm.dependency_list(folder)
                 if dep["status"] not in ("ok", "unpacked"))
