"""clean: each rule on small inputs, duplicates and conflicts, and the reject-fraction guard."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from stages.config.clean import CleanParams
from stages.data.cleaning import CleanError, clean_table, clean_text, group_key

P = CleanParams()


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
    p = CleanParams(strip_html=False, unicode_form="none", fold_whitespace=False, min_words=0)
    assert clean_text("<b>x</b>  \ufb01", p) == ("<b>x</b>  \ufb01", [])


def test_length_limits_and_empty() -> None:
    df = table([("<br/>", "a"), ("ab", "a"), ("abc def", "a"), ("xx yy " * 10, "b")])
    out, rejects, report = clean_table(df, CleanParams(min_words=2, max_chars=10, max_reject_fraction=1.0))
    assert out["text"].tolist() == ["abc def"]
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
    out, rejects, report = clean_table(df, CleanParams(min_words=2, max_reject_fraction=1.0))
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
        clean_table(df, CleanParams(min_words=2))


def test_min_above_max_is_a_params_error() -> None:
    with pytest.raises(ValueError, match="min_words"):
        CleanParams(min_words=10, max_chars=5)


def test_bbc_news_duplicates_are_collapsed() -> None:
    from stages.config.ingest import IngestParams
    from stages.data.raw import ingest

    raw, _, _ = ingest(IngestParams())
    out, _, report = clean_table(raw, CleanParams())
    assert report["duplicates"] == 100 and report["rejected"] == 0  # not rejects (issue 22)
    assert len(out) == 2125 and out["text"].is_unique


def test_labels_that_label_folds_together_are_a_duplicate_not_a_conflict() -> None:
    """Issue 13: "Sport" vs "sport" on one text was rejected as a conflict, though label folds them."""
    df = table([("Same story here", "Sport"), ("Same story here", " sport "), ("Another story here", "tech")])
    out, rejects, report = clean_table(df, CleanParams(max_reject_fraction=1.0))
    assert out["id"].tolist() == ["r0", "r2"]
    assert [r["reason"] for r in rejects] == ["duplicate"] and report["conflicting_duplicate_groups"] == 0


def test_conflicts_are_judged_with_labels_aliases_and_case_setting() -> None:
    from stages.config.label import LabelParams

    df = table([("Same story here", "sports"), ("Same story here", "Sport"), ("Another story here", "tech")])
    lenient = CleanParams(max_reject_fraction=1.0)
    _, rejects, _ = clean_table(df, lenient, LabelParams(aliases={"sport": "sports"}))
    assert [r["reason"] for r in rejects] == ["duplicate"]
    _, rejects, _ = clean_table(df, lenient)  # no alias: two classes
    assert [r["reason"] for r in rejects] == ["conflicting_labels"] * 2
    assert "labels ['sport', 'sports']" in rejects[0]["detail"]
    _, rejects, _ = clean_table(df, lenient, LabelParams(lowercase=False, aliases={"sport": "sports"}))
    assert [r["reason"] for r in rejects] == ["conflicting_labels"] * 2  # "Sport" is not "sport" here


def test_chinese_sayings_are_not_too_short() -> None:
    """Issue 13: min_chars 20 rejected 11.5% of a Chinese dataset; a Han character now counts as a word."""
    sayings = ["塞翁失马，焉知非福", "三人行，必有我师焉", "千里之行，始于足下", "学而不思则罔"]
    df = table(
        [(t, "proverb") for t in sayings] + [("Shares fell sharply today", "news"), ("Hi there", "news")]
    )
    out, rejects, _ = clean_table(df, CleanParams(max_reject_fraction=1.0))
    nfkc = [unicodedata.normalize("NFKC", t) for t in sayings]  # the full-width comma becomes ","
    assert out["text"].tolist() == [*nfkc, "Shares fell sharply today"]
    assert [(r["id"], r["reason"], r["detail"]) for r in rejects] == [
        ("r5", "too_short", "2 words < min_words 3")
    ]


def test_the_old_min_chars_key_names_its_replacement() -> None:
    from stages.config.params import ParamsError, validate_section

    with pytest.raises(ParamsError, match=r"`clean.min_chars` was replaced by `clean.min_words`"):
        validate_section("clean", {"min_chars": 20}, CleanParams)


def test_a_length_limit_that_removes_over_3_percent_of_a_class_is_reported() -> None:
    """Issue 13: a limit removing a share of one class below max_reject_fraction went by without a word."""
    rows = [(f"business story number {i}", "business") for i in range(30)] + [("Too short", "business")] * 2
    rows += [(f"sports story number {i}", "sports") for i in range(40)] + [("Go team", "sports")]
    _, _, report = clean_table(table(rows), CleanParams())
    assert report["length_warnings"] == [
        {
            "label": "business",
            "reason": "too_short",
            "rejected": 2,
            "rows": 32,
            "fraction": 0.0625,
            "message": "clean.min_words removed 2 of 32 `business` rows (6.2% > clean.warn_class_fraction 0.03); "
            "see clean's rejects.jsonl",
        }
    ]  # sports lost 1 of 41 (2.4%), under clean.warn_class_fraction = 0.03
