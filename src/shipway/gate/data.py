"""Load the gate's holdout table (labels and both models' predictions) from parquet, CSV or npz."""

from __future__ import annotations

import difflib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shipway.gate.columns import settle_csv_column
from shipway.gate.errors import GateInputError

SUPPORTED_SUFFIXES = (".parquet", ".pq", ".csv", ".npz")


@dataclass(frozen=True)
class GateData:
    """One holdout: labels and the candidate's and baseline's predictions, row-aligned."""

    source: str
    labels: np.ndarray
    candidate: np.ndarray
    baseline: np.ndarray
    label_column: str
    candidate_column: str
    baseline_column: str
    slices: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Number of holdout rows."""
        return int(self.labels.shape[0])


def load_gate_data(
    path: str | Path,
    labels: str,
    candidate: str,
    baseline: str,
    slices: Sequence[str] = (),
) -> GateData:
    """Read the named columns from DATA and check they are present, aligned, non-empty and finite."""
    source = Path(path)
    if not source.is_file():
        raise GateInputError(f"{source}: no such file")
    if source.stat().st_size == 0:
        raise GateInputError(f"{source}: the file is empty")
    suffix = source.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise GateInputError(
            f"{source}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    wanted = [labels, candidate, baseline, *slices]
    duplicates = sorted({name for name in wanted if wanted.count(name) > 1})
    if duplicates:
        raise GateInputError(f"{source}: column {duplicates[0]!r} is given for more than one role")
    reader = {".csv": _read_csv, ".npz": _read_npz}.get(suffix, _read_parquet)
    columns = reader(source, wanted)
    expected = columns[labels].shape[0]
    if expected == 0:
        raise GateInputError(f"{source}: column {labels!r} has no rows")
    for name in wanted:
        length = columns[name].shape[0]
        if length != expected:
            raise GateInputError(
                f"{source}: column {name!r} has {length} rows but labels column {labels!r} has {expected}"
            )
        _check_complete(source, name, columns[name])
        if suffix == ".csv":
            columns[name] = settle_csv_column(str(source), name, columns[name])
    return GateData(
        source=str(source),
        labels=columns[labels],
        candidate=columns[candidate],
        baseline=columns[baseline],
        label_column=labels,
        candidate_column=candidate,
        baseline_column=baseline,
        slices={name: columns[name] for name in slices},
    )


def _unknown(source: Path, name: str, available: Sequence[str]) -> GateInputError:
    close = difflib.get_close_matches(name, list(available), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(repr(a) for a in available) or "none"
    return GateInputError(f"{source}: unknown column {name!r}{hint} (available: {listed})")


def _read_csv(source: Path, wanted: Sequence[str]) -> dict[str, np.ndarray]:
    import pandas as pd

    try:
        header = list(pd.read_csv(source, nrows=0).columns)
    except pd.errors.EmptyDataError:
        raise GateInputError(f"{source}: the file is empty (no header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise GateInputError(f"{source}: not a readable CSV file: {error}") from None
    for name in wanted:
        if name not in header:
            raise _unknown(source, name, header)
    try:
        frame = pd.read_csv(source, usecols=list(wanted))
    except (pd.errors.ParserError, ValueError) as error:
        raise GateInputError(f"{source}: not a readable CSV file: {error}") from None
    return {name: frame[name].to_numpy() for name in wanted}


def _read_parquet(source: Path, wanted: Sequence[str]) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(source)
    except (pa.ArrowException, OSError) as error:
        raise GateInputError(f"{source}: not a readable parquet file: {error}") from None
    for name in wanted:
        if name not in schema.names:
            raise _unknown(source, name, schema.names)
    table = pq.read_table(source, columns=list(wanted))
    columns: dict[str, np.ndarray] = {}
    for name in wanted:
        column = table.column(name)
        if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type):
            columns[name] = _stack_rows(source, name, column.to_pylist())
        else:
            columns[name] = column.to_numpy(zero_copy_only=False)
    return columns


def _read_npz(source: Path, wanted: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(source, allow_pickle=False) as archive:
            available = list(archive.files)
            for name in wanted:
                if name not in available:
                    raise _unknown(source, name, available)
            columns = {name: archive[name] for name in wanted}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise GateInputError(f"{source}: not a readable npz file: {error}") from None
    for name, array in columns.items():
        if array.ndim == 0 or array.ndim > 2:
            raise GateInputError(
                f"{source}: array {name!r} has shape {array.shape}; expected one row per holdout example"
            )
    return columns


def _stack_rows(source: Path, name: str, rows: list[object]) -> np.ndarray:
    """Turn a list-typed column (per-class probabilities) into an n x K matrix."""
    widths = {len(row) if isinstance(row, list) else -1 for row in rows}
    if len(widths) > 1 or -1 in widths:
        raise GateInputError(f"{source}: column {name!r} holds lists of unequal length or missing rows")
    try:
        return np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise GateInputError(f"{source}: column {name!r} holds lists that are not numbers") from None


def _check_complete(source: Path, name: str, values: np.ndarray) -> None:
    """Refuse missing or infinite values, naming the first bad row (1-based, header excluded)."""
    if values.dtype.kind in "fc":
        bad = ~np.isfinite(values)
    elif values.dtype.kind == "O":
        import pandas as pd

        bad = np.asarray(pd.isna(values))
    else:
        return
    if bad.ndim > 1:
        bad = bad.any(axis=tuple(range(1, bad.ndim)))
    count = int(bad.sum())
    if count:
        first = int(np.argmax(bad)) + 1
        raise GateInputError(
            f"{source}: column {name!r} has {count} missing or non-finite value(s), the first at row {first}"
        )
