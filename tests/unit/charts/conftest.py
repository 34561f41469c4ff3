"""Each example synthesised and rendered through its charts once per session: the renders are shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.charts.engine import ParseCache
from shipway.platform.synth import SynthResult, render_charts, run_program, write

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def parse_cache(tmp_path_factory: pytest.TempPathFactory) -> ParseCache:
    """One parse cache for the session, so the renders share parsed CRDs without touching the user's cache."""
    return ParseCache(tmp_path_factory.mktemp("parsed"))


@pytest.fixture(scope="session", params=["kind-dev", "eks-prod", "gke-prod"])
def rendered_example(request: pytest.FixtureRequest, chart_cache: Path, parse_cache: ParseCache,
                     tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthResult, Path]:
    """An example's synth, its releases rendered through the chart cache, and the folder it was written to."""
    from shipway.charts.cache import ChartCache

    result = run_program(ROOT / "blueprints" / f"{request.param}.yaml")
    render_charts(result, ChartCache(chart_cache), parse_cache)
    out = tmp_path_factory.mktemp("rendered") / request.param
    write(result, out)
    return result, out
