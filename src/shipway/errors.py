"""Domain errors: what the CLI maps to exit codes and prints without a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field


class ShipwayError(Exception):
    """Any error Shipway reports to a user; the message is the whole report."""

    exit_code = 1


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
