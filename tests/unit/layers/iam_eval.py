"""A small evaluator of IAM identity policies: enough of AWS's rules to ask whether a call is allowed.

It covers what Shipway's policies use: Action and Resource wildcards, and the StringEquals, StringLike,
ForAllValues:StringEquals and ForAllValues:StringLike condition operators. A call is allowed when an Allow
statement matches it and no Deny does; a condition key the call does not carry fails StringEquals/StringLike
and passes ForAllValues (as in AWS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any


@dataclass
class Call:
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)  # condition keys, e.g. aws:RequestTag/Name


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, wanted: Any, context: dict[str, Any]) -> bool:
    if operator == "ForAllValues:StringEquals":
        return all(value in _listed(wanted) for value in _listed(context.get(key, [])))
    if operator == "ForAllValues:StringLike":
        return all(any(fnmatchcase(value, pattern) for pattern in _listed(wanted))
                   for value in _listed(context.get(key, [])))
    if key not in context:
        return False
    if operator == "StringEquals":
        return any(value in _listed(wanted) for value in _listed(context[key]))
    if operator == "StringLike":
        return any(fnmatchcase(value, pattern) for value in _listed(context[key]) for pattern in _listed(wanted))
    if operator == "Bool":
        return str(context[key]).lower() == str(wanted).lower()
    raise AssertionError(f"the evaluator does not know {operator}")


def _matches(statement: dict[str, Any], call: Call) -> bool:
    if not any(fnmatchcase(call.action, action) for action in _listed(statement["Action"])):
        return False
    if not any(fnmatchcase(call.resource, resource) for resource in _listed(statement["Resource"])):
        return False
    return all(_condition_holds(operator, key, wanted, call.context)
               for operator, keys in statement.get("Condition", {}).items() for key, wanted in keys.items())


def allowed(policy: dict[str, Any], call: Call) -> bool:
    """Whether the policy allows the call."""
    matching = [statement for statement in policy["Statement"] if _matches(statement, call)]
    return (any(statement["Effect"] == "Allow" for statement in matching)
            and not any(statement["Effect"] == "Deny" for statement in matching))
