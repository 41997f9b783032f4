"""The routing decision for each combination of confidence, nulls, rules and document state."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.settings import ROOT
from service.doctypes import load_document_types
from service.extract.result import Extraction, FieldResult
from service.routing import REJECT_ALL, REVIEW, STRAIGHT_THROUGH, choose_thresholds, decide
from service.validate import RuleFailure

DOC_TYPES = load_document_types(ROOT / "config" / "schemas")
TICKET = DOC_TYPES["ticket"]
REQUIRED = [s.name for s in TICKET.fields if not s.nullable]
OPTIONAL = [s.name for s in TICKET.fields if s.nullable]


def extraction(confidence=0.95, nulls=(), overrides=None, warnings=()):
    """A ticket where every field has a value at *confidence*, except *nulls*."""
    fields = {}
    for spec in TICKET.fields:
        value = None if spec.name in nulls else (spec.enum[0] if spec.enum else "x")
        fields[spec.name] = FieldResult(value, confidence=confidence)
    for name, conf in (overrides or {}).items():
        fields[name].confidence = conf
    return Extraction("ticket", fields, "test", warnings=list(warnings))


def codes(decision):
    return [r["code"] for r in decision.reasons]


def test_confident_and_consistent_goes_straight_through():
    decision = decide(TICKET, extraction(0.95), [])
    assert decision.route == STRAIGHT_THROUGH and decision.reasons == ()


def test_confident_nulls_in_optional_fields_need_no_threshold():
    decision = decide(TICKET, extraction(0.95, nulls=OPTIONAL, overrides={n: 0.01 for n in OPTIONAL}))
    assert decision.route == STRAIGHT_THROUGH


def test_low_confidence_required_field_goes_to_review_with_the_numbers():
    field = REQUIRED[0]
    decision = decide(TICKET, extraction(0.95, overrides={field: 0.5}))
    assert decision.route == REVIEW
    assert decision.reasons == ({"code": "low_confidence", "field": field, "confidence": 0.5, "threshold": 0.9},)
    assert decision.uncertain_fields == [field] and decision.escalatable


def test_low_confidence_non_null_optional_field_counts():
    field = OPTIONAL[0]
    decision = decide(TICKET, extraction(0.95, overrides={field: 0.2}))
    assert decision.route == REVIEW and decision.reasons[0]["field"] == field


def test_null_required_field_is_missing():
    field = REQUIRED[0]
    decision = decide(TICKET, extraction(0.99, nulls=[field]))
    assert decision.reasons == ({"code": "missing_required", "field": field},)
    fields = extraction().fields
    del fields[field]
    assert codes(decide(TICKET, Extraction("ticket", fields, "t"))) == ["missing_required"]


def test_per_field_thresholds_override_the_default():
    field = REQUIRED[0]
    low = extraction(0.95, overrides={field: 0.6})
    assert decide(TICKET, low, thresholds={field: 0.5}).route == STRAIGHT_THROUGH
    assert decide(TICKET, extraction(0.95), thresholds={field: 0.97}).route == REVIEW
    assert decide(TICKET, extraction(0.5), default_threshold=0.4).route == STRAIGHT_THROUGH
    assert decide(TICKET, extraction(0.9)).route == STRAIGHT_THROUGH  # the threshold itself clears


def test_failed_rule_goes_to_review_by_name():
    failure = RuleFailure("some_rule", (REQUIRED[0],), "why")
    decision = decide(TICKET, extraction(0.99), [failure])
    assert decision.reasons == ({"code": "failed_rule", "rule": "some_rule", "fields": [REQUIRED[0]], "message": "why"},)
    assert decision.uncertain_fields == [REQUIRED[0]]


ADVISORY = [s.name for s in TICKET.fields if s.advisory]


def test_the_default_ticket_marks_its_judgements_advisory_and_nothing_it_extracts():
    assert ADVISORY == ["priority", "sentiment", "summary"]
    assert not any(s.advisory for s in DOC_TYPES["invoice"].fields)


def test_an_unsure_advisory_field_does_not_hold_a_document_back():
    decision = decide(TICKET, extraction(0.95, overrides={name: 0.3 for name in ADVISORY}))
    assert decision.route == STRAIGHT_THROUGH and decision.reasons == ()
    unsure_category = decide(TICKET, extraction(0.95, overrides={"category": 0.3, **{n: 0.3 for n in ADVISORY}}))
    assert [r["field"] for r in unsure_category.reasons] == ["category"]


def test_an_advisory_field_must_still_have_a_value():
    decision = decide(TICKET, extraction(0.95, nulls=["summary"]))
    assert decision.reasons == ({"code": "missing_required", "field": "summary"},)


def test_no_text_layer_and_truncation_are_reasons_a_frontier_cannot_fix():
    decision = decide(TICKET, extraction(0.99), has_text_layer=False)
    assert decision.reasons == ({"code": "no_text_layer"},) and not decision.escalatable
    truncated = decide(TICKET, extraction(0.99, warnings=["pages 3-5 left out: context budget", "font fallback"]))
    assert truncated.reasons == ({"code": "truncated", "warning": "pages 3-5 left out: context budget"},)
    assert decide(TICKET, extraction(0.99, warnings=["font fallback"])).route == STRAIGHT_THROUGH


@pytest.mark.parametrize(
    "confident, rules_pass, text_layer, complete, truncated",
    list(itertools.product([True, False], repeat=5)),
)
def test_every_combination(confident, rules_pass, text_layer, complete, truncated):
    doc = extraction(
        0.95 if confident else 0.5,
        nulls=() if complete else REQUIRED[:1],
        warnings=["output truncated at the token cap"] if truncated else [],
    )
    failures = [] if rules_pass else [RuleFailure("r", (REQUIRED[-1],), "m")]
    decision = decide(TICKET, doc, failures, has_text_layer=text_layer)
    all_good = confident and rules_pass and text_layer and complete and truncated is False
    assert decision.route == (STRAIGHT_THROUGH if all_good else REVIEW)
    expected = set()
    expected |= set() if confident else {"low_confidence"}
    expected |= set() if rules_pass else {"failed_rule"}
    expected |= set() if text_layer else {"no_text_layer"}
    expected |= set() if complete else {"missing_required"}
    expected |= {"truncated"} if truncated else set()
    assert set(codes(decision)) == expected
    assert decision.to_dict()["route"] == decision.route


# ------------------------------------------------------------ threshold choice


def test_threshold_on_a_perfectly_ranked_set_is_the_lowest_correct_confidence():
    assert choose_thresholds([0.9, 0.8, 0.7, 0.6], [True, True, False, False], 0.99) == 0.8


def test_threshold_can_accept_everything_when_all_correct():
    assert choose_thresholds([0.3, 0.9], [True, True]) == 0.3


def test_threshold_accepts_some_errors_when_the_target_allows():
    confidences = [0.99, 0.95, 0.9, 0.85, 0.8]
    correct = [True, True, True, False, True]  # 4/5 = 0.8 at 0.8, 3/4 at 0.85
    assert choose_thresholds(confidences, correct, target_precision=0.8) == 0.8
    assert choose_thresholds(confidences, correct, target_precision=0.99) == 0.9


def test_ties_are_accepted_together():
    # At 0.9 the accepted set is all three tied answers: 2/3 correct.
    assert choose_thresholds([0.9, 0.9, 0.9, 0.95], [True, False, True, True], 0.99) == 0.95


def test_unreachable_target_rejects_all():
    assert choose_thresholds([0.9, 0.8], [False, False]) == REJECT_ALL > 1.0
    assert choose_thresholds([], []) == REJECT_ALL
    with pytest.raises(ValueError):
        choose_thresholds([0.5], [True, False])


@st.composite
def validation_sets(draw):
    n = draw(st.integers(1, 200))
    confidences = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    correct = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return np.array(confidences), np.array(correct)


@given(validation_sets(), st.sampled_from([0.5, 0.9, 0.99]))
def test_chosen_threshold_reaches_the_target_and_is_the_lowest_that_does(data, target):
    confidences, correct = data
    threshold = choose_thresholds(confidences, correct, target)
    if threshold == REJECT_ALL:
        for t in np.unique(confidences):
            assert correct[confidences >= t].mean() < target
        return
    assert correct[confidences >= threshold].mean() >= target - 1e-12
    for t in np.unique(confidences[confidences < threshold]):
        assert correct[confidences >= t].mean() < target


def test_threshold_on_a_synthetic_calibrated_set_reaches_99_percent():
    rng = np.random.default_rng(7)
    confidences = rng.uniform(0.5, 1.0, 20_000)
    correct = rng.uniform(size=confidences.size) < confidences
    threshold = choose_thresholds(confidences, correct, 0.99)
    assert 0.95 < threshold < 1.0
    assert correct[confidences >= threshold].mean() >= 0.99
