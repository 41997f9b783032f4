"""The promotion gate: overall golden-set accuracy at least the active model's, no field down by more than the margin."""

from service.doctypes import load_document_types
from service.evaluation import DEFAULT_SCHEMA_DIR, Example, score_document, summarize
from service.extract.result import Extraction, FieldResult
from training.gate import Scores, judge

TICKET = load_document_types(DEFAULT_SCHEMA_DIR)["ticket"]


def scores(**fields: tuple[int, int]) -> Scores:
    return Scores({f"invoice.{name}": counts for name, counts in fields.items()})


def test_a_better_candidate_is_promoted():
    decision = judge(scores(total=(9, 10), vendor_name=(10, 10)), scores(total=(7, 10), vendor_name=(10, 10)))
    assert decision.promote and decision.reasons == []
    assert abs(decision.comparison["fields"]["invoice.total"]["delta"] - 0.2) < 1e-9


def test_an_equal_candidate_is_promoted():
    assert judge(scores(total=(7, 10)), scores(total=(7, 10))).promote


def test_a_worse_candidate_is_rejected_with_the_comparison():
    decision = judge(scores(total=(5, 10), vendor_name=(10, 10)), scores(total=(7, 10), vendor_name=(10, 10)))
    assert not decision.promote
    assert any("overall accuracy" in r for r in decision.reasons)
    assert "invoice.total drops 20.00% (70.00% → 50.00%), more than the 10.00% allowed (one answer of 10)" in decision.reasons
    out = decision.to_dict()
    assert out["decision"] == "reject" and out["overall"]["candidate"] == 0.75 and out["overall"]["active"] == 0.85


def test_one_answer_is_the_finest_drop_a_small_golden_set_can_show():
    """The 100-correction demonstration's case: 17 golden invoices, one vendor name lost, everything else far better."""
    active = scores(vendor_name=(15, 17), buyer_name=(9, 17), line_items=(6, 17))
    one_lost = scores(vendor_name=(14, 17), buyer_name=(15, 17), line_items=(14, 17))
    decision = judge(one_lost, active, margin=0.01)
    assert decision.promote, decision.reasons
    assert abs(decision.comparison["fields"]["invoice.vendor_name"]["allowed_drop"] - 1 / 17) < 1e-9
    two_lost = scores(vendor_name=(13, 17), buyer_name=(15, 17), line_items=(14, 17))
    assert judge(two_lost, active, margin=0.01).reasons == [
        "invoice.vendor_name drops 11.76% (88.24% → 76.47%), more than the 5.88% allowed (one answer of 17)"]
    # From 100 labelled values on, one answer is no more than the margin and the margin rules.
    assert judge(scores(total=(99, 100)), scores(total=(100, 100))).comparison["fields"]["invoice.total"]["allowed_drop"] == 0.01
    assert not judge(scores(total=(198, 200), x=(200, 200)), scores(total=(200, 200), x=(198, 200)), margin=0.005).promote


def test_one_field_dropping_more_than_the_margin_rejects_even_if_overall_improves():
    candidate = scores(total=(98, 100), invoice_date=(80, 100))
    active = scores(total=(80, 100), invoice_date=(82, 100))
    decision = judge(candidate, active, margin=0.01)
    assert candidate.overall > active.overall
    assert not decision.promote
    assert decision.reasons == ["invoice.invoice_date drops 2.00% (82.00% → 80.00%), more than the 1.00% allowed"]
    assert judge(candidate, active, margin=0.02).promote  # the margin is configurable; exactly 2 points is allowed


def test_an_empty_golden_set_never_promotes():
    decision = judge(Scores(), scores(total=(7, 10)))
    assert not decision.promote and "golden set is empty" in decision.reasons[0]


def test_no_active_model_promotes_any_measured_candidate():
    assert judge(scores(total=(1, 10)), None).promote


def test_a_guard_suite_dropping_more_than_the_margin_rejects():
    golden = scores(total=(10, 10))
    shared_before, shared_after = scores(total=(90, 100)), scores(total=(85, 100))
    decision = judge(golden, golden, 0.01, guards={"shared:sroie": (shared_after, shared_before)})
    assert not decision.promote and decision.reasons[0].startswith("shared:sroie: overall accuracy drops 5.00%")


def test_scores_come_from_evaluation_reports():
    """Models of known quality: one answers every ticket right, one gets the category wrong on half."""
    examples = [Example(f"t{i}", "text", {"category": "refund", "language": "en"}) for i in range(4)]

    def answer(category: str) -> Extraction:
        return Extraction("ticket", {"category": FieldResult(category, confidence=0.9),
                                     "language": FieldResult("en", confidence=0.9)}, "m")

    good = summarize([score_document(TICKET, e, answer("refund")) for e in examples])
    half = summarize([score_document(TICKET, e, answer("refund" if i % 2 else "order"))
                      for i, e in enumerate(examples)])
    good_scores, half_scores = Scores.from_reports([good]), Scores.from_reports([half])
    assert good_scores.fields == {"ticket.category": (4, 4), "ticket.language": (4, 4)}
    assert half_scores.fields["ticket.category"] == (2, 4)
    assert judge(good_scores, half_scores).promote
    worse = judge(half_scores, good_scores, min_labelled=4)
    assert not worse.promote and any("ticket.category drops 50.00%" in r for r in worse.reasons)


def test_a_field_with_too_few_golden_values_cannot_veto_on_its_own():
    """The demonstration's case: amount_due 1/1 → 0/1 on a 3-document golden set, everything else better."""
    candidate = scores(vendor_name=(8, 10), total=(9, 10), amount_due=(0, 1))
    active = scores(vendor_name=(5, 10), total=(7, 10), amount_due=(1, 1))
    decision = judge(candidate, active, margin=0.01, min_labelled=10)
    assert decision.promote, decision.reasons
    assert decision.comparison["too_few_to_judge"] == ["invoice.amount_due"]
    assert decision.comparison["fields"]["invoice.amount_due"]["judged"] is False
    assert decision.comparison["fields"]["invoice.total"]["judged"] is True
    # Judged from one label on, it is judged (and one answer is all a single label can lose).
    judged = judge(candidate, active, margin=0.01, min_labelled=1)
    assert judged.comparison["fields"]["invoice.amount_due"]["judged"] is True and judged.promote


def test_a_field_labelled_often_enough_still_vetoes_and_the_small_one_still_counts_overall():
    candidate = scores(total=(8, 10), amount_due=(0, 2))
    active = scores(total=(10, 10), amount_due=(2, 2))
    decision = judge(candidate, active, margin=0.01, min_labelled=10)
    assert not decision.promote
    assert any(r.startswith("invoice.total drops 20.00%") for r in decision.reasons)
    assert not any("amount_due" in r for r in decision.reasons)
    # Overall (8/12 against 12/12) is judged whatever the per-field sample sizes.
    small = judge(scores(amount_due=(0, 2)), scores(amount_due=(2, 2)), min_labelled=10)
    assert not small.promote and any("overall accuracy" in r for r in small.reasons)
