"""A multi-label version's smoke record: its thresholds kept, and a label may enter or leave a set only
where its recorded probability lay within twice the tolerance of its threshold."""

from __future__ import annotations

import pandas as pd

from stages.registry.smoke import SmokeRecord

CLASSES = ["billing", "bug", "refund"]
THRESHOLDS = [0.4, 0.5, 0.6]


def answer(labels: list[str], probs: list[list[float]]) -> pd.DataFrame:
    out = pd.DataFrame({"label": labels, "score": [0.5] * len(labels)})
    for k, name in enumerate(CLASSES):
        out[f"p_{name}"] = [row[k] for row in probs]
    return out


RECORDED = [[0.9, 0.505, 0.1], [0.1, 0.2, 0.3]]  # row 1: none passes, the fallback chose refund
RECORD = SmokeRecord.from_output(["a", "b"], answer(["billing|bug", "refund"], RECORDED), THRESHOLDS)


def test_the_thresholds_travel_with_the_record_and_single_label_json_keeps_its_keys() -> None:
    again = SmokeRecord.from_json(RECORD.to_json(), "smoke.json")
    assert again == RECORD and again.thresholds == THRESHOLDS
    single = SmokeRecord.from_output(["a"], answer(["bug"], [[0.2, 0.7, 0.1]]))
    assert "thresholds" not in single.to_json()


def test_a_label_at_its_threshold_may_flip_within_the_tolerance() -> None:
    # bug sat 0.005 from its threshold: dropping it, with probabilities within 0.01, is the same model
    assert RECORD.mismatch(answer(["billing", "refund"], [[0.9, 0.499, 0.1], [0.1, 0.2, 0.3]]), 0.01) is None
    # the fallback row is not judged by its set
    assert RECORD.mismatch(answer(["billing|bug", "bug"], RECORDED), 0.01) is None


def test_a_label_far_from_its_threshold_may_not() -> None:
    why = RECORD.mismatch(answer(["bug", "refund"], RECORDED), 0.01)
    assert why == "row 0 is labelled 'bug', recorded 'billing|bug' (`billing` was 0.500 from its threshold)"
