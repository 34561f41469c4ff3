"""What an assessment is made of: checks, what each source saw, and the scored report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Organisations that check fewer boxes than this are, in the survey behind the checklist,
# among the 93% that deploy models rarely.
EIGHT_BOX_THRESHOLD = 8


class Status(StrEnum):
    """The outcome of a check; unknown means no available source could say."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


class SourceKind(StrEnum):
    """Where evidence comes from."""

    BLUEPRINT = "blueprint"
    CLUSTER = "cluster"
    MODEL_REPO = "model-repo"
    GITOPS_REPO = "gitops-repo"


@dataclass(frozen=True)
class Category:
    """A group of checks scored together."""

    id: str
    title: str


@dataclass(frozen=True)
class Check:
    """One box on the checklist."""

    id: str
    category: Category
    question: str
    why: str
    how: str


@dataclass(frozen=True)
class Finding:
    """What one evaluator concluded from one source, before the source is named."""

    status: Status
    evidence: str


def passed(evidence: str) -> Finding:
    """A finding that ticks the box."""
    return Finding(Status.PASS, evidence)


def failed(evidence: str) -> Finding:
    """A finding that leaves the box empty."""
    return Finding(Status.FAIL, evidence)


def unknown(evidence: str) -> Finding:
    """A finding the source cannot decide."""
    return Finding(Status.UNKNOWN, evidence)


@dataclass(frozen=True)
class Observation:
    """What one named source saw for one check."""

    source: str
    status: Status
    evidence: str

    def to_dict(self) -> dict[str, str]:
        """The observation as JSON-ready data."""
        return {"source": self.source, "status": self.status.value, "evidence": self.evidence}


# A failure anywhere outweighs a pass elsewhere, and a source that could not look
# keeps a check from passing: the box is ticked only when every source that looked agrees.
_SEVERITY = {Status.PASS: 0, Status.UNKNOWN: 1, Status.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    """A check and what every source it was assessed from saw."""

    check: Check
    observations: tuple[Observation, ...]

    @property
    def status(self) -> Status:
        """The worst status any source reported."""
        if not self.observations:
            return Status.UNKNOWN
        return max((obs.status for obs in self.observations), key=_SEVERITY.__getitem__)

    @property
    def source(self) -> str:
        """The sources consulted, comma-separated."""
        return ", ".join(obs.source for obs in self.observations)

    @property
    def evidence(self) -> str:
        """What was seen; each part prefixed with its source when there are several."""
        if len(self.observations) == 1:
            return self.observations[0].evidence
        return "; ".join(f"{obs.source}: {obs.evidence}" for obs in self.observations)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "id": self.check.id,
            "category": self.check.category.id,
            "question": self.check.question,
            "status": self.status.value,
            "source": self.source,
            "evidence": self.evidence,
            "observations": [obs.to_dict() for obs in self.observations],
        }


@dataclass(frozen=True)
class CategoryScore:
    """Boxes checked in one category."""

    category: Category
    passed: int
    failed: int
    unknown: int

    @property
    def total(self) -> int:
        """Checks in the category."""
        return self.passed + self.failed + self.unknown

    def to_dict(self) -> dict[str, Any]:
        """The score as JSON-ready data; the HTML chart is drawn from exactly this."""
        return {"category": self.category.id, "title": self.category.title, "passed": self.passed,
                "failed": self.failed, "unknown": self.unknown, "total": self.total}


@dataclass(frozen=True)
class SourceSummary:
    """A source the assessment was given, and whether it could be read."""

    kind: SourceKind
    name: str
    available: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {"kind": self.kind.value, "name": self.name, "available": self.available, "detail": self.detail}


@dataclass(frozen=True)
class Report:
    """The whole assessment: every check's result, scored."""

    blueprint: str
    results: tuple[CheckResult, ...]
    categories: tuple[Category, ...]
    sources: tuple[SourceSummary, ...] = field(default_factory=tuple)
    threshold: int = EIGHT_BOX_THRESHOLD
    # The platform's DORA keys (`shipway dora`'s JSON for the platform) when a GitOps repo was given.
    delivery: dict[str, Any] | None = None

    def count(self, status: Status) -> int:
        """How many checks ended with the status."""
        return sum(1 for result in self.results if result.status is status)

    @property
    def passed(self) -> int:
        """Boxes checked."""
        return self.count(Status.PASS)

    @property
    def total(self) -> int:
        """Boxes on the checklist."""
        return len(self.results)

    def category_scores(self) -> list[CategoryScore]:
        """Boxes checked per category, in checklist order."""
        scores = []
        for category in self.categories:
            statuses = [result.status for result in self.results if result.check.category == category]
            scores.append(CategoryScore(category, statuses.count(Status.PASS), statuses.count(Status.FAIL),
                                        statuses.count(Status.UNKNOWN)))
        return scores

    @property
    def verdict(self) -> str:
        """One sentence placing the score against the eight-box line."""
        score = f"{self.passed} of {self.total} boxes checked"
        line = (f"Organisations that check fewer than {self.threshold} boxes are among the 93% "
                "that deploy models rarely")
        if self.passed >= self.threshold:
            text = f"{score}: past the {self.threshold}-box line. {line}."
        else:
            text = f"{score}: below the {self.threshold}-box line. {line}; start with the failed checks."
        unknowns = self.count(Status.UNKNOWN)
        if unknowns:
            text += f" {unknowns} could not be assessed from the sources given."
        return text

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "blueprint": self.blueprint,
            "sources": [source.to_dict() for source in self.sources],
            "checks": [result.to_dict() for result in self.results],
            "categories": [score.to_dict() for score in self.category_scores()],
            "totals": {"passed": self.passed, "failed": self.count(Status.FAIL),
                       "unknown": self.count(Status.UNKNOWN), "total": self.total, "threshold": self.threshold},
            "verdict": self.verdict,
            **({"delivery": self.delivery} if self.delivery is not None else {}),
        }
