"""Reading training features from a file, for profiles built outside Python code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shipway.drift.profile import DEFAULT_BINS, ReferenceProfile, build_profile
from shipway.errors import ShipwayError


def profile_from_file(
    path: Path,
    features: Sequence[str] = (),
    categorical: Sequence[str] = (),
    prediction: str | None = None,
    bins: int = DEFAULT_BINS,
) -> ReferenceProfile:
    """Profile a CSV or parquet file: the named features (default: every column but the prediction)."""
    import pandas as pd

    if not path.is_file():
        raise ShipwayError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise ShipwayError(f"{path}: expected a .csv or .parquet file, got {suffix or 'no suffix'!r}")
    except (ValueError, OSError, ImportError) as error:
        raise ShipwayError(f"{path}: could not read: {error}") from None
    if prediction is not None and prediction not in frame.columns:
        raise ShipwayError(f"{path}: prediction column {prediction!r} not found; columns: {list(frame.columns)}")
    chosen = list(features) or [str(column) for column in frame.columns if column != prediction]
    return build_profile(
        frame,
        feature_names=chosen,
        categorical=categorical,
        predictions=frame[prediction].to_numpy() if prediction else None,
        bins=bins,
    )
