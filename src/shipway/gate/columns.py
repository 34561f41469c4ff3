"""Column types for the gate, decided once from a whole column and the metric, never by silent casts.

A CSV column that pandas could not read as numbers (one stray ``"one"`` among integers) is
settled here: when most of its values are numbers, the first value that is not is bad input,
named with its row. Classification columns are then checked against one set of classes,
the labels' (or the declared ones): every label and every predicted label must be one of
them, of the same kind (numbers, booleans counting as 0 and 1, or text), and a fractional
label is refused. Probabilities must lie in [0, 1]. Every refusal names the file, the column,
the first bad row (1-based, header excluded) and the value, as plain Python shows it.

Which class is positive (binary ROC AUC, F1, log loss, and probabilities cut at 0.5) is
explicit: ``--positive-class`` or model.yaml's ``gate.positiveClass``. Without one, the
documented default rule (``POSITIVE_RULE``) applies, and the report says which class and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipway.gate.errors import GateInputError

# Text labels that name the positive answer of a yes/no question, compared in lower case.
POSITIVE_NAMES = frozenset({"1", "true", "t", "yes", "y", "positive", "pos"})
POSITIVE_RULE = (
    "numeric (or boolean) labels: the larger class (1 of 0/1, True of False); text labels: the one class "
    f"named {', '.join(sorted(POSITIVE_NAMES))} (any case), else give --positive-class"
)


def shown(value: Any) -> str:
    """A value as a user wrote it: 1, 'yes', 0.3; never numpy's np.int64(1)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def bad_value(source: str, column: str, index: int, value: Any, why: str) -> GateInputError:
    """The refusal of one value: file, column, 1-based row and the value."""
    return GateInputError(f"{source}: column {column!r}, row {index + 1}: {shown(value)} {why}")


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    try:
        float(str(value).strip())
    except ValueError:
        return False
    return True


def settle_csv_column(source: str, column: str, values: np.ndarray) -> np.ndarray:
    """A CSV column pandas left as objects: text when it is text, else numbers with the first stray refused."""
    if values.dtype.kind != "O":
        return values
    numeric = np.fromiter((_is_number(value) for value in values), dtype=bool, count=values.shape[0])
    if not numeric.any():
        return values.astype(str)
    if numeric.all():
        return np.asarray([float(str(value).strip()) for value in values], dtype=np.float64)
    # Mostly text with a few numbers is text (a class may be called "3"); mostly numbers with text is a stray.
    if numeric.sum() * 2 <= values.shape[0]:
        return values.astype(str)
    first = int(np.argmin(numeric))
    raise bad_value(source, column, first, values[first],
                    f"is not a number, but {int(numeric.sum())} of the column's {values.shape[0]} values are; "
                    "fix or remove that row")


def _kind(values: np.ndarray) -> str:
    return "number" if values.dtype.kind in "biuf" else "text"


def _keys(values: np.ndarray) -> np.ndarray:
    """Comparable keys: floats for numbers (so 1 and 1.0 are one class), str for text."""
    if _kind(values) == "number":
        return values.astype(np.float64)
    return values.astype(str)


@dataclass(frozen=True)
class ClassSet:
    """The classes of a classification gate, in code order, and which one is positive (binary)."""

    source: str
    label_column: str
    kind: str
    keys: tuple[Any, ...]
    names: tuple[str, ...]
    positive: str | None
    positive_rule: str

    @property
    def sorted_codes(self) -> np.ndarray:
        """Code of each class in sorted key order: how columns of per-class probabilities are laid out."""
        order = sorted(range(len(self.keys)), key=lambda code: self.keys[code])
        return np.asarray(order, dtype=np.int64)

    def codes(self, column: str, values: np.ndarray) -> np.ndarray:
        """Each value's class code; a value of another kind or outside the classes is bad input."""
        if _kind(values) != self.kind:
            what = "a number" if _kind(values) == "number" else "text"
            raise bad_value(self.source, column, 0, values[0],
                            f"is {what}, but the classes of {self.label_column!r} are {self.kind} "
                            f"({_listed(self.names, text=self.kind == 'text')}); store labels and predictions as the same type")
        keys = _keys(values)
        ordered = np.asarray(sorted(self.keys), dtype=keys.dtype)
        place = np.searchsorted(ordered, keys).clip(0, ordered.shape[0] - 1)
        unknown = ordered[place] != keys
        if unknown.any():
            first = int(np.argmax(unknown))
            raise bad_value(self.source, column, first, values[first],
                            f"is not one of the classes ({_listed(self.names, text=self.kind == 'text')})")
        return self.sorted_codes[place]

    def check_labels(self, labels: np.ndarray) -> np.ndarray:
        """The labels' codes, refusing fractional labels."""
        if labels.dtype.kind == "f":
            fractional = labels != np.round(labels)
            if fractional.any():
                first = int(np.argmax(fractional))
                raise bad_value(self.source, self.label_column, first, labels[first],
                                "is not a class label: classification labels are integers, booleans or text")
        return self.codes(self.label_column, labels)


def _listed(names: Sequence[str], limit: int = 10, text: bool = False) -> str:
    shown_names = ", ".join(repr(name) if text else name for name in names[:limit])
    return shown_names + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def class_set(
    source: str,
    label_column: str,
    labels: np.ndarray,
    declared: Sequence[str] = (),
    positive: str | None = None,
    positive_origin: str = "--positive-class",
    binary: bool = False,
    positive_needed: bool = True,
) -> ClassSet:
    """The classes (declared, else the labels'), ordered negative then positive for a binary task."""
    kind = _kind(labels)
    if declared:
        keys = sorted({_declared_key(kind, name, "--class") for name in declared})
    else:
        keys = sorted(set(_keys(labels).tolist()))
    names = [_name(kind, key, labels.dtype.kind == "b") for key in keys]
    rule = "not used"
    chosen: Any = None
    if binary and len(keys) == 2 and (positive is not None or positive_needed):
        if positive is not None:
            chosen = _declared_key(kind, positive, positive_origin)
            if chosen not in keys:
                raise GateInputError(
                    f"{positive_origin} {positive!r} is not one of the classes of {label_column!r} ({_listed(names)})"
                )
            rule = positive_origin
        elif kind == "number":
            chosen, rule = keys[1], "default: the larger of two numeric classes"
        else:
            named = [key for key in keys if str(key).strip().lower() in POSITIVE_NAMES]
            if len(named) == 1:
                chosen, rule = named[0], f"default: {named[0]!r} names the positive answer"
            else:
                raise GateInputError(
                    f"{source}: labels column {label_column!r} holds the text classes {_listed(names)}; say which "
                    "is positive with --positive-class or model.yaml's gate.positiveClass"
                )
        if chosen is not None:
            keys = [key for key in keys if key != chosen] + [chosen]
            names = [_name(kind, key, labels.dtype.kind == "b") for key in keys]
    elif positive is not None and not binary:
        raise GateInputError(f"{positive_origin} applies to a binary task; {label_column!r} holds {len(keys)} classes")
    return ClassSet(
        source=source,
        label_column=label_column,
        kind=kind,
        keys=tuple(keys),
        names=tuple(names),
        positive=None if chosen is None else _name(kind, chosen, labels.dtype.kind == "b"),
        positive_rule=rule,
    )


def _declared_key(kind: str, text: str, origin: str) -> Any:
    if kind == "text":
        return str(text)
    lowered = str(text).strip().lower()
    if lowered in ("true", "false"):
        return 1.0 if lowered == "true" else 0.0
    try:
        return float(lowered)
    except ValueError:
        raise GateInputError(f"{origin} {text!r} is not a number, but the labels are numbers") from None


def _name(kind: str, key: Any, boolean: bool) -> str:
    if kind == "text":
        return str(key)
    if boolean:
        return "True" if key else "False"
    return str(int(key)) if float(key).is_integer() else repr(float(key))


def probabilities(source: str, column: str, values: np.ndarray) -> np.ndarray:
    """A column of probabilities as floats, refusing text and values outside [0, 1] by their first row."""
    if values.dtype.kind not in "biuf":
        raise bad_value(source, column, 0, values.reshape(values.shape[0], -1)[0][0] if values.ndim > 1 else values[0],
                        "is text, but this metric needs probabilities in [0, 1]")
    scores = values.astype(np.float64, copy=False)
    outside = (scores < 0.0) | (scores > 1.0)
    if outside.ndim > 1:
        outside_rows = outside.any(axis=tuple(range(1, outside.ndim)))
    else:
        outside_rows = outside
    if outside_rows.any():
        first = int(np.argmax(outside_rows))
        value = scores[first] if scores.ndim == 1 else scores[first][outside[first]][0]
        raise bad_value(source, column, first, value, "is not a probability in [0, 1]")
    return scores


def numbers(source: str, column: str, values: np.ndarray) -> np.ndarray:
    """A numeric column as floats; text is refused at its first row."""
    if values.dtype.kind not in "biuf":
        raise bad_value(source, column, 0, values[0], "is text, but this metric needs numbers")
    if values.ndim != 1:
        raise GateInputError(f"{source}: column {column!r} must hold one number per row")
    return values.astype(np.float64, copy=False)
