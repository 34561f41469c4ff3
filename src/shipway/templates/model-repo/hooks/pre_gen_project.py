"""Refuse unsafe or invalid template inputs before any file of the model repo is written."""

import keyword
import re
import sys

# A DNS-1123 label that also meets the ModelSpec's name rule: a leading letter, at most 40 characters.
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
PACKAGE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DESCRIPTION = re.compile(r"^[A-Za-z0-9 .,;:()_/'-]{1,200}$")
REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*$")

# tojson makes each value a string literal, whatever was typed, so no input can inject code here.
VALUES = {
    "model_name": {{ cookiecutter.model_name | tojson }},
    "team": {{ cookiecutter.team | tojson }},
    "package_name": {{ cookiecutter.package_name | tojson }},
    "description": {{ cookiecutter.description | tojson }},
    "registry": {{ cookiecutter.registry | tojson }},
}


def problems(values):
    """Every reason the inputs are refused, each saying what was given and what is allowed."""
    found = []
    for field in ("model_name", "team"):
        if not DNS_LABEL.match(values[field]):
            found.append(
                f"{field} {values[field]!r} is not a DNS-1123 label model.yaml accepts: use 1-40 lower-case "
                "letters, digits and '-', starting with a letter and ending with a letter or digit "
                "(e.g. 'churn-classifier')"
            )
    package = values["package_name"]
    if not PACKAGE.match(package) or keyword.iskeyword(package):
        found.append(
            f"package_name {package!r} is not a valid Python package name: use lower-case letters, digits "
            "and '_', not starting with a digit, and not a Python keyword"
        )
    if not DESCRIPTION.match(values["description"]):
        found.append(
            "description may hold only letters, digits, spaces and . , ; : ( ) _ / ' - (at most 200 characters)"
        )
    if not REGISTRY.match(values["registry"]):
        found.append(f"registry {values['registry']!r} is not an OCI repository prefix like 'registry.example.com/models'")
    return found


if __name__ == "__main__":
    refused = problems(VALUES)
    for reason in refused:
        print(f"error: {reason}", file=sys.stderr)
    sys.exit(1 if refused else 0)
