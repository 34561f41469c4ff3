"""Domain errors: what the CLI maps to exit codes and prints without a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field


class ShipwayError(Exception):
    """Any error Shipway reports to a user; the message is the whole report."""

    exit_code = 1


# The pyproject.toml extra that brings each optional top-level module; the base install has none of them.
EXTRA_OF_MODULE = {
    **dict.fromkeys(("numpy", "scipy", "pandas", "pyarrow", "matplotlib", "prometheus_client", "aiohttp", "oras",
                     "cookiecutter"), "model"),
    **dict.fromkeys(("kubernetes", "testinfra"), "cluster"),
    **dict.fromkeys(("pulumi_aws", "pulumi_eks"), "aws"),
    "pulumi_gcp": "gcp",
    **dict.fromkeys(("helm_python", "kubernetes_validate", "jsonschema", "referencing"), "charts"),
}


class MissingExtra(ShipwayError):
    """A command needs an optional dependency the install lacks; the message names the extra to install."""


def missing_extra(error: BaseException) -> MissingExtra | None:
    """The MissingExtra an import failure (or what it caused) stands for, or None if it is no extra's module."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError):
            module = (seen.name or "").split(".")[0]
            if module in EXTRA_OF_MODULE:
                extra = EXTRA_OF_MODULE[module]
                return MissingExtra(f"this needs the `{extra}` extra, which brings {module}: "
                                    f"pip install 'shipway[{extra}]' (or `pip install -e '.[{extra}]'` in a checkout)")
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(frozen=True)
class Problem:
    """One problem in an input file, located by file, line and column (1-based)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


@dataclass
class SpecError(ShipwayError):
    """An input file failed to load or validate; carries every problem found."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = 2

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
