"""`shipway diff A B`: what differs between two synth outputs, object by object and field by field.

Objects are Shipway's (manifests/) and the charts' (rendered/), keyed by who they are once applied;
releases are compared by chart, version and values. The offline answer to "what will this change do".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipway.errors import ShipwayError
from shipway.yamlio import from_yaml

MISSING = "<absent>"


@dataclass
class Change:
    """One field that differs: its path, its value before and after (MISSING when absent)."""

    path: str
    before: Any
    after: Any


@dataclass
class Entry:
    """One object or release that was added, removed or changed."""

    kind: str  # "object" or "release"
    key: str
    status: str  # "added", "removed", "changed"
    changes: list[Change] = field(default_factory=list)


class NotASynthOutput(ShipwayError):
    """A folder given to `diff` is not what `shipway synth -o` writes: bad input."""

    exit_code = 2


def _read_yaml(path: Path, folder: Path) -> Any:
    try:
        return from_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise NotASynthOutput(f"{path}: not YAML ({' '.join(str(error).split())}); {folder} is not a synth output "
                              f"as written: write it again with `shipway synth -o {folder}`") from None


def _load_tree(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if not (folder / "plan.json").is_file():
        raise NotASynthOutput(f"{folder} is not a synth output (no plan.json); write one with "
                              f"`shipway synth -o {folder}`")
    objects: dict[str, Any] = {}
    for sub in ("manifests", "rendered"):
        for path in sorted((folder / sub).rglob("*.yaml")) if (folder / sub).is_dir() else []:
            obj = _read_yaml(path, folder)
            if not isinstance(obj, dict):
                continue
            meta = obj.get("metadata") or {}
            where = path.parent.name if sub == "rendered" else "shipway"
            key = f"{obj.get('kind')} {meta.get('namespace') or '-'}/{meta.get('name')} ({where})"
            objects[key] = obj
    releases = {}
    for path in sorted((folder / "releases").glob("*.yaml")) if (folder / "releases").is_dir() else []:
        release = _read_yaml(path, folder)
        releases[f"{release.get('namespace')}/{release.get('name')}"] = release
    return objects, releases


def field_changes(before: Any, after: Any, path: str = "") -> list[Change]:
    """Every leaf that differs between two values; lists compare item by item."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            segment = f"[{key}]" if "." in str(key) else str(key)
            child = f"{path}.{segment}" if path else segment
            changes += field_changes(before.get(key, MISSING), after.get(key, MISSING), child)
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [change for index, (old, new) in enumerate(zip(before, after, strict=True))
                for change in field_changes(old, new, f"{path}[{index}]")]
    return [] if before == after else [Change(path or "(whole)", before, after)]


def diff(before_dir: str | Path, after_dir: str | Path) -> list[Entry]:
    """Objects and releases added, removed or changed from one synth output to another."""
    old_objects, old_releases = _load_tree(Path(before_dir))
    new_objects, new_releases = _load_tree(Path(after_dir))
    entries = []
    for kind, old, new in (("release", old_releases, new_releases), ("object", old_objects, new_objects)):
        for key in sorted(set(old) | set(new)):
            if key not in old:
                entries.append(Entry(kind, key, "added"))
            elif key not in new:
                entries.append(Entry(kind, key, "removed"))
            else:
                changes = field_changes(old[key], new[key])
                if changes:
                    entries.append(Entry(kind, key, "changed", changes))
    return entries


def as_json(entries: list[Entry]) -> str:
    """The diff as JSON, for CI."""
    return json.dumps({"added": sum(e.status == "added" for e in entries),
                       "removed": sum(e.status == "removed" for e in entries),
                       "changed": sum(e.status == "changed" for e in entries),
                       "entries": [{"kind": e.kind, "key": e.key, "status": e.status,
                                    "changes": [{"path": c.path, "before": c.before, "after": c.after}
                                                for c in e.changes]} for e in entries]}, indent=2, default=str)
