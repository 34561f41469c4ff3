"""Reading training features from a file, for profiles built outside Python code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipway.drift.profile import DEFAULT_BINS, DEFAULT_MAX_PSI, ReferenceProfile, build_profile
from shipway.errors import ShipwayError


class DriftInputError(ShipwayError):
    """A drift command's input is unusable (profile, data file or column); exit code 2."""

    exit_code = 2


def read_frame(path: Path, error: type[ShipwayError] = ShipwayError) -> Any:
    """A CSV or parquet file as a pandas DataFrame; anything else, or an unreadable file, raises `error`."""
    import pandas as pd

    if not path.is_file():
        raise error(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise error(f"{path}: expected a .csv or .parquet file, got {suffix or 'no suffix'!r}")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, ImportError) as failure:
        raise error(f"{path}: could not read: {failure}") from None


def profile_from_file(
    path: Path,
    features: Sequence[str] = (),
    categorical: Sequence[str] = (),
    prediction: str | None = None,
    bins: int = DEFAULT_BINS,
    max_psi: float = DEFAULT_MAX_PSI,
) -> ReferenceProfile:
    """Profile a CSV or parquet file: the named features (default: every column but the prediction)."""
    frame = read_frame(path, DriftInputError)
    if prediction is not None and prediction not in frame.columns:
        raise DriftInputError(f"{path}: prediction column {prediction!r} not found; columns: {list(frame.columns)}")
    chosen = list(features) or [str(column) for column in frame.columns if column != prediction]
    return build_profile(
        frame,
        feature_names=chosen,
        categorical=categorical,
        predictions=frame[prediction].to_numpy() if prediction else None,
        bins=bins,
        max_psi=max_psi,
    )
