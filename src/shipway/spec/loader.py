"""Load YAML specs with every problem reported as file:line:column: field.path: message."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from shipway.errors import Problem, SpecError
from shipway.spec.base import Located, Violations

ModelT = TypeVar("ModelT", bound=BaseModel)
Loc = tuple[str | int, ...]

MAX_FILE_BYTES = 4 * 1024 * 1024

_HINTS = {
    "missing": "add this field",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_type": "write a number",
    "float_parsing": "write a number",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "string_type": "write a string (quote it if YAML reads it as something else)",
    "list_type": "write a YAML list (- item)",
    "dict_type": "write a YAML mapping (key: value)",
    "model_type": "write a YAML mapping (key: value)",
    "model_attributes_type": "write a YAML mapping (key: value)",
    "literal_error": "use one of the listed values",
    "union_tag_invalid": "use one of the listed values",
    "union_tag_not_found": "add the discriminator field",
    "greater_than_equal": "raise the value",
    "greater_than": "raise the value",
    "less_than_equal": "lower the value",
    "less_than": "lower the value",
    "too_short": "add items",
    "string_pattern_mismatch": "fix the value's format",
}


def read_yaml(path: Path) -> Any:
    """Parse a YAML file keeping line information; syntax errors become a SpecError."""
    file = str(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise SpecError([Problem(file, 1, 1, "", f"cannot read the file: {error.strerror}",
                                 "check the path")]) from None
    if size > MAX_FILE_BYTES:
        raise SpecError([Problem(file, 1, 1, "", f"the file is {size} bytes; specs are at most {MAX_FILE_BYTES}",
                                 "is this the right file?")])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpecError([Problem(file, 1, 1, "", f"the file is not UTF-8 text ({error.reason})",
                                 "save it as UTF-8")]) from None
    except OSError as error:
        raise SpecError([Problem(file, 1, 1, "", f"cannot read the file: {error.strerror}",
                                 "check the path")]) from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(part for part in (error.context, error.problem) if part)
        raise SpecError([Problem(file, line, column, "", f"YAML syntax error: {message}",
                                 "fix the YAML syntax (indentation, quotes, colons)")]) from None
    except (YAMLError, RecursionError, ValueError) as error:
        raise SpecError([Problem(file, 1, 1, "", f"YAML error: {error}", "fix the YAML syntax")]) from None


def load_spec(path: str | Path, model: type[ModelT], what: str) -> ModelT:
    """Load and validate one YAML document against a spec model."""
    path = Path(path)
    file = str(path)
    data = read_yaml(path)
    if data is None:
        raise SpecError([Problem(file, 1, 1, "", f"the file is empty; a {what} is a YAML mapping",
                                 f"start from an example {what}")])
    if not isinstance(data, dict):
        line, column = _position(data, ())
        raise SpecError([Problem(file, line, column, "", f"a {what} is a YAML mapping, got a {_yaml_type(data)}",
                                 "write key: value pairs at the top level")])
    try:
        return model.model_validate(_plain(data))
    except ValidationError as error:
        problems = _problems(file, data, model, error)
        raise SpecError(sorted(problems, key=lambda p: (p.line, p.column, p.path))) from None
    except RecursionError:
        raise SpecError([Problem(file, 1, 1, "", "the document nests too deeply", "flatten it")]) from None


def locate(path: str | Path, items: list[Located]) -> list[Problem]:
    """Findings about a loaded spec (warnings), placed at their file:line like loading errors."""
    data = read_yaml(Path(path))
    found = [Problem(str(path), *_position(data, item.loc), format_loc(item.loc), item.message, item.hint)
             for item in items]
    return sorted(found, key=lambda p: (p.line, p.column, p.path))


def format_loc(loc: Loc) -> str:
    """A location as a dotted path with indexes: nodePools[1].gpu.count."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _plain(data: Any) -> Any:
    """ruamel containers as plain dicts and lists, so pydantic sees ordinary values."""
    if isinstance(data, dict):
        return {str(key) if not isinstance(key, str) else key: _plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_plain(item) for item in data]
    return data


def _problems(file: str, data: Any, model: type[BaseModel], error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        raw_loc = tuple(item["loc"])
        loc = _yaml_loc(data, raw_loc)
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, Violations | Located):
            for located in cause.items if isinstance(cause, Violations) else [cause]:
                full = loc + located.loc
                line, column = _position(data, full)
                problems.append(Problem(file, line, column, format_loc(full), located.message, located.hint))
            continue
        message, hint = _describe(item, data, loc, model)
        line, column = _position(data, loc, key=item["type"] == "extra_forbidden")
        problems.append(Problem(file, line, column, format_loc(loc), message, hint))
    return problems


def _describe(item: dict[str, Any], data: Any, loc: Loc, model: type[BaseModel]) -> tuple[str, str]:
    kind = item["type"]
    message = str(item["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        valid = _valid_keys(model, loc[:-1])
        key = str(loc[-1]) if loc else ""
        near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f'did you mean "{near[0]}"?' if near else ""
        listing = f"valid keys here: {', '.join(valid)}" if valid else ""
        return f'unknown key "{key}"', "; ".join(part for part in (hint, listing) if part)
    if kind == "missing":
        return "required field is missing", f"add `{loc[-1]}:` here" if loc else "add this field"
    if kind == "union_tag_not_found":
        key = str((item.get("ctx") or {}).get("discriminator", "")).strip("'")
        tags = _union_tags(model, loc, key)
        return (f"`{key}:` is missing; it says which variant this is",
                f"add `{key}:` with one of: {', '.join(tags)}" if tags else f"add `{key}:`")
    got = item.get("input")
    if kind not in ("value_error", "assertion_error") and not isinstance(got, dict | list) and got is not None:
        shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:57] + "..."
        message = f"{message} (got {shown})"
    return message, _HINTS.get(kind, "")


def _yaml_loc(data: Any, raw: tuple[Any, ...]) -> Loc:
    """Drop the parts of a pydantic location that are not in the YAML (union tags, validator names)."""
    loc: list[str | int] = []
    node = data
    for part in raw:
        if isinstance(node, dict) and part in node:
            loc.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            loc.append(part)
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and _is_internal(part, node):
            continue
        else:
            loc.append(part)
            node = None
    return tuple(loc)


def _is_internal(part: str, node: dict[str, Any]) -> bool:
    """A union tag (the value of the node's discriminator) or a validator step name."""
    return part in {str(value) for value in node.values() if isinstance(value, str)} or "[" in part


def _position(data: Any, loc: Loc, key: bool = False) -> tuple[int, int]:
    """Line and column (1-based) of the deepest node of loc the YAML has."""
    node = data
    line, column = _start(data)
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            key_line, key_column, value_line, value_column = node.lc.data[part]
            value = node[part]
            if key and last or not isinstance(value, CommentedMap | CommentedSeq) and value is None:
                line, column = key_line + 1, key_column + 1
            else:
                line, column = value_line + 1, value_column + 1
            node = value
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            item_line, item_column = node.lc.data[part]
            line, column = item_line + 1, item_column + 1
            node = node[part]
        else:
            break
    return line, column


def _start(node: Any) -> tuple[int, int]:
    if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
        return node.lc.line + 1, node.lc.col + 1
    return 1, 1


def _yaml_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _valid_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The YAML keys a mapping at loc may hold, walking the model's field types."""
    candidates: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for candidate in candidates:
            following += _step(candidate, part)
        candidates = following
    keys: list[str] = []
    for candidate in candidates:
        for alt in _unwrap(candidate):
            if isinstance(alt, type) and issubclass(alt, BaseModel):
                keys += [field.alias or name for name, field in alt.model_fields.items()]
    return sorted(dict.fromkeys(keys))


def _union_tags(model: type[BaseModel], loc: Loc, key: str) -> list[str]:
    """The values a union's discriminator `key` may take at loc, in the order the model lists them."""
    candidates: list[Any] = [model]
    for part in loc:
        candidates = [following for candidate in candidates for following in _step(candidate, part)]
    tags: list[str] = []
    for candidate in candidates:
        for alt in _unwrap(candidate):
            field = alt.model_fields.get(key) if isinstance(alt, type) and issubclass(alt, BaseModel) else None
            if field is not None and typing.get_origin(field.annotation) is typing.Literal:
                tags += [str(value) for value in typing.get_args(field.annotation)]
    return list(dict.fromkeys(tags))


def _step(annotation: Any, part: str | int) -> list[Any]:
    result = []
    for alt in _unwrap(annotation):
        origin = typing.get_origin(alt)
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            for name, field in alt.model_fields.items():
                if part in (name, field.alias):
                    result.append(field.annotation)
        elif origin is list and isinstance(part, int):
            result.append(typing.get_args(alt)[0])
        elif origin is dict and isinstance(part, str):
            result.append(typing.get_args(alt)[1])
    return result


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out += _unwrap(arg)
        return out
    return [annotation]
