"""Deterministic YAML output: keys in the order given, multi-line strings as blocks."""

from __future__ import annotations

from typing import Any

import yaml


# libyaml's emitter when PyYAML has it: a whole platform's rendered charts are megabytes of YAML.
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(_SafeDumper):  # type: ignore[misc,valid-type]
    """A safe dumper that writes multi-line strings as literal blocks."""


def _str_presenter(dumper: Any, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(obj: Any) -> str:
    """YAML for people and diffs: stable order, readable embedded configs."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """A safe loader that reads a bare `=` as the string it is in Kubernetes YAML (PyYAML alone refuses it)."""


_Loader.add_constructor("tag:yaml.org,2002:value", _Loader.construct_yaml_str)


def from_yaml(text: str) -> Any:
    """One YAML document, parsed safely (with libyaml when present)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
