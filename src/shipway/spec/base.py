"""The base every spec model shares, and the small value types blueprints use."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<suffix>m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_SUFFIX = {
    None: Decimal(1), "m": Decimal("0.001"),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50),
}


class Spec(BaseModel):
    """Base of every spec model: unknown keys fail, values never change after loading."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


class Located(ValueError):
    """A cross-field violation that knows where it is, as a path of YAML keys and indexes."""

    def __init__(self, loc: tuple[str | int, ...], message: str, hint: str = "") -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.hint = hint


class Violations(ValueError):
    """Every cross-field violation a validator found, raised together so all are reported."""

    def __init__(self, items: list[Located]) -> None:
        super().__init__("; ".join(item.message for item in items))
        self.items = items


def raise_all(items: list[Located]) -> None:
    """Raise the collected violations, if any."""
    if items:
        raise Violations(items)


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f'Got "{value}". A name must be a DNS-1123 label: lowercase letters, digits and "-", '
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _quantity(value: object) -> str:
    if isinstance(value, bool):
        raise ValueError(f"Got {value!r}; a Kubernetes quantity is a number or a string like \"500m\" or \"64Gi\"")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise ValueError(f'Got {value!r}; a Kubernetes quantity looks like "2", "500m", "64Gi" or "1.5T"')
    return value


# The node model cache takes at most this share of the filesystem its folder is on.
MAX_CACHE_SHARE = 50


def disk_share(value: str) -> int | None:
    """The percentage a cache size such as "40%" names; None for a size in bytes; ValueError outside 1-50%."""
    if not value.endswith("%"):
        return None
    share = value[:-1]
    if not share.isdigit() or not 1 <= int(share) <= MAX_CACHE_SHARE:
        raise ValueError(f"Got {value!r}; a share of the disk is a whole percentage from 1% to {MAX_CACHE_SHARE}%")
    return int(share)


def _cache_size(value: object) -> str:
    """A size in bytes (a quantity), or a share of a disk: "40%"."""
    if isinstance(value, str) and disk_share(value) is not None:
        return value
    return _quantity(value)


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}


def duration_seconds(value: str) -> float:
    """A duration like "1h30m" or "90d" in seconds (Prometheus's units: a year is 365 days)."""
    return float(sum(int(amount) * _DURATION_UNITS[unit] for amount, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", value)))


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f'Got "{value}"; a duration looks like "30s", "5m", "15d" or "1h30m"')
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Quantity = Annotated[str, BeforeValidator(_quantity)]
CacheSize = Annotated[str, BeforeValidator(_cache_size)]
Duration = Annotated[str, AfterValidator(_duration)]


def quantity_value(quantity: str) -> Decimal:
    """The numeric value of a Kubernetes quantity, in base units (cores, bytes)."""
    match = _QUANTITY.match(quantity)
    if match is None:  # guarded by the Quantity type; kept for direct callers
        raise ValueError(f"not a quantity: {quantity!r}")
    try:
        return Decimal(match["number"]) * _SUFFIX[match["suffix"]]
    except InvalidOperation as error:  # pragma: no cover - the regex admits only plain decimals
        raise ValueError(f"not a quantity: {quantity!r}") from error
