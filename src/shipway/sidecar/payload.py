"""Reading features, request ids and predictions out of inference JSON, never changing it.

Two request shapes are understood:

* Open Inference Protocol v2: `{"id": ..., "inputs": [{"name", "shape", "datatype", "data"}]}`.
  An input named after a feature is that feature's column; an input of shape
  [rows, features] (MLServer's sklearn runtime takes one such "predict" input)
  holds every feature in the profile's order.
* Plain JSON rows: a list of rows, one row, or `{"instances" | "inputs" |
  "dataframe_records": [rows]}`; a row is a {feature: value} object or a list in
  the profile's order.

Anything else is "unparsed": the caller passes it through untouched and counts it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

ROW_KEYS = ("instances", "inputs", "dataframe_records")


@dataclass
class Features:
    """Feature columns of one request, by name, and how many rows it carried."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    rows: int = 0


def load_json(body: bytes) -> Any:
    """The decoded body, or None when it is not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: pathologically nested JSON must not take the handler down.
        return None


def inflate(body: bytes, encoding: str, limit: int) -> bytes | None:
    """A gzip or deflate body decompressed for reading, or None when unknown, corrupt or over `limit` bytes."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(
        encoding.strip().lower()
    )
    if wbits is None:
        return None
    # Some clients send deflate without its zlib header; try raw deflate after the standard form.
    for bits in (wbits, -zlib.MAX_WBITS) if wbits == zlib.MAX_WBITS else (wbits,):
        decompressor = zlib.decompressobj(bits)
        try:
            # max_length bounds what a small, highly compressed body can inflate to.
            inflated = decompressor.decompress(body, limit + 1)
        except zlib.error:
            continue
        return None if len(inflated) > limit or decompressor.unconsumed_tail else inflated
    return None


def request_id(document: Any) -> str | None:
    """The OIP `id` field of a request, when it has one."""
    if isinstance(document, dict):
        value = document.get("id")
        if isinstance(value, str) and value:
            return value
    return None


def features(document: Any, names: tuple[str, ...]) -> Features | None:
    """The request's feature columns, or None when no feature of the profile could be found."""
    if not names:
        return None
    try:
        if isinstance(document, dict) and _is_oip(document.get("inputs")):
            found = _oip_features(document["inputs"], names)
        else:
            found = _row_features(document, names)
    except (TypeError, ValueError, KeyError, IndexError):
        return None
    if found is None or found.rows == 0 or not found.columns:
        return None
    return found


def predictions(document: Any) -> list[Any] | None:
    """The predictions of a response: OIP `outputs[0].data`, `{"predictions": [...]}` or a bare list."""
    if isinstance(document, dict):
        outputs = document.get("outputs")
        if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
            return _flatten(outputs[0].get("data"))
        values = document.get("predictions")
        if isinstance(values, list):
            return _flatten(values)
        return None
    if isinstance(document, list):
        return _flatten(document)
    return None


def _is_oip(inputs: Any) -> bool:
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and all(isinstance(tensor, dict) and "data" in tensor and "name" in tensor for tensor in inputs)
    )


def _oip_features(inputs: list[dict[str, Any]], names: tuple[str, ...]) -> Features | None:
    wanted = set(names)
    result = Features()
    for tensor in inputs:
        data = _flatten(tensor["data"])
        shape = [int(size) for size in tensor.get("shape") or [len(data)]]
        # Rows are counted as read, never as declared: a shape of [1e12] over one value is one row.
        name = tensor["name"]
        if name in wanted:
            column = data[: max(0, shape[0])] if shape else data
            result.columns[name] = column
            result.rows = max(result.rows, len(column))
        elif len(shape) == 2 and shape[1] == len(names) and len(data) == shape[0] * shape[1]:
            width = shape[1]
            for index, feature in enumerate(names):
                result.columns[feature] = data[index::width]
            result.rows = max(result.rows, len(data) // width)
    return result


def _row_features(document: Any, names: tuple[str, ...]) -> Features | None:
    rows: Any = document
    if isinstance(document, dict):
        for key in ROW_KEYS:
            if isinstance(document.get(key), list):
                rows = document[key]
                break
        else:
            rows = [document]
    if not isinstance(rows, list) or not rows:
        return None
    first = rows[0]
    if isinstance(first, dict):
        present = [name for name in names if name in first]
        if not present:
            return None
        columns = {name: [row.get(name) if isinstance(row, dict) else None for row in rows] for name in present}
        return Features(columns=columns, rows=len(rows))
    if isinstance(first, list) and len(first) == len(names):
        columns = {name: [row[index] if len(row) > index else None for row in rows] for index, name in enumerate(names)}
        return Features(columns=columns, rows=len(rows))
    if not isinstance(first, (list, dict)) and len(rows) == len(names):
        # One bare row of values, in the profile's order.
        return Features(columns={name: [value] for name, value in zip(names, rows, strict=True)}, rows=1)
    return None


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    if not data[0] or not isinstance(data[0][0], list):
        # The common [rows][values] case, flattened in one pass.
        return [value for row in data for value in (row if isinstance(row, list) else [row])]
    flat: list[Any] = []
    stack = [data]
    # Iterative row-major flattening: tensors may nest deeper than two levels.
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat
