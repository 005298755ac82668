"""clean: each rule on small inputs, duplicates and conflicts, and the reject-fraction guard."""

from __future__ import annotations

import pandas as pd
import pytest

from stages.clean import CleanError, CleanParams, clean_table, clean_text, group_key

P = CleanParams(min_chars=3)


def table(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": f"r{i}", "text": t, "label": lab, "source_file": "f", "source_line": i}
            for i, (t, lab) in enumerate(rows)
        ]
    )


def test_html_ansi_control_unicode_whitespace() -> None:
    raw = "<p>Caf\u00e9&nbsp;<b>prices</b></p><script>var x=1;</script>\x1b[31mred\x1b[0m\x00 \u200bz\ufb01x\t\n end"
    text, changed = clean_text(raw, P)
    assert text == "Café prices red zfix end"
    assert set(changed) == {"ansi", "html", "unicode", "control", "whitespace"}


def test_plain_comparison_signs_are_not_mistaken_for_tags() -> None:
    assert clean_text("if a < b and c > d then", P)[0] == "if a < b and c > d then"


def test_rules_can_be_switched_off() -> None:
    p = CleanParams(strip_html=False, unicode_form="none", fold_whitespace=False, min_chars=0)
    assert clean_text("<b>x</b>  \ufb01", p) == ("<b>x</b>  \ufb01", [])


def test_length_limits_and_empty() -> None:
    df = table([("<br/>", "a"), ("ab", "a"), ("abcdef", "a"), ("x" * 50, "b")])
    out, rejects, report = clean_table(df, CleanParams(min_chars=3, max_chars=10, max_reject_fraction=1.0))
    assert out["text"].tolist() == ["abcdef"]
    assert [r["reason"] for r in rejects] == ["empty", "too_short", "too_long"]
    assert report["reject_reasons"] == {"empty": 1, "too_short": 1, "too_long": 1}


def test_duplicates_collapse_after_normalisation_and_conflicts_are_rejected() -> None:
    df = table(
        [
            ("Same  story", "a"),
            ("<i>Same</i> story", "a"),
            ("Same story", "a"),
            ("Other text", "a"),
            ("Other   text", "b"),
            ("Unique one", "b"),
        ]
    )
    out, rejects, report = clean_table(df, CleanParams(min_chars=3, max_reject_fraction=1.0))
    assert out["id"].tolist() == ["r0", "r5"]
    assert report["duplicate_groups"] == 1 and report["conflicting_duplicate_groups"] == 1
    assert sorted(r["reason"] for r in rejects) == ["conflicting_labels"] * 2 + ["duplicate"] * 2
    assert "exact duplicate of r0" in {r["detail"] for r in rejects}


def test_group_key_matches_near_duplicates() -> None:
    assert group_key("Hello, World!") == group_key("hello world") != group_key("hello there")


def test_too_many_rejects_fail_with_top_reasons() -> None:
    df = table([("ab", "a"), ("cd", "a"), ("long enough", "a")])
    with pytest.raises(
        CleanError, match=r"rejected 2 of 3 rows .*max_reject_fraction = 0.2; top reasons: too_short \(2\)"
    ):
        clean_table(df, CleanParams(min_chars=3))


def test_min_above_max_is_a_params_error() -> None:
    with pytest.raises(ValueError, match="min_chars"):
        CleanParams(min_chars=10, max_chars=5)


def test_bbc_news_duplicates_are_collapsed() -> None:
    from stages.ingest import IngestParams, ingest

    raw, _, _ = ingest(IngestParams())
    out, _, report = clean_table(raw, CleanParams())
    assert report["reject_reasons"] == {"duplicate": 100}
    assert len(out) == 2125 and out["text"].is_unique
