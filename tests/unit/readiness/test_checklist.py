"""The checklist itself: enough boxes, every category covered, every box decidable from some source."""

from __future__ import annotations

from shipway.readiness import CATEGORIES, CHECKS
from shipway.readiness import blueprint_evidence, cluster, repo
from shipway.readiness.assess import sources_for
from shipway.readiness.model import SourceKind

ISSUE_CATEGORIES = {"model-cicd", "gitops", "gpu-scheduling", "artifacts", "validation-gates", "observability",
                    "circuit-breakers", "rollouts", "tenancy", "self-service"}


def test_the_checklist_has_at_least_sixteen_checks_with_unique_ids() -> None:
    ids = [check.id for check in CHECKS]
    assert len(ids) >= 16
    assert len(set(ids)) == len(ids)


def test_every_category_the_issue_names_has_checks_and_only_those_categories_exist() -> None:
    assert {category.id for category in CATEGORIES} == ISSUE_CATEGORIES
    covered = {check.category.id for check in CHECKS}
    assert covered == ISSUE_CATEGORIES


def test_every_check_states_its_question_why_and_how() -> None:
    for check in CHECKS:
        assert check.question.endswith("?"), check.id
        assert len(check.why) > 30 and len(check.how) > 30, check.id
        assert check.why != check.how, check.id


def test_every_check_has_an_evaluator_and_every_evaluator_a_check() -> None:
    ids = {check.id for check in CHECKS}
    for evaluators in (blueprint_evidence.EVALUATORS, cluster.EVALUATORS, repo.EVALUATORS):
        assert set(evaluators) <= ids
    for check in CHECKS:
        assert sources_for(check.id), f"{check.id} cannot be assessed from any source"


def test_a_blueprint_alone_can_decide_more_than_the_eight_box_threshold() -> None:
    decidable = [check.id for check in CHECKS if SourceKind.BLUEPRINT in sources_for(check.id)]
    assert len(decidable) > 8
