"""The card in MLflow says where it was cut, and its Use section names an alias that exists."""

from __future__ import annotations

from stages.registry.card import description, use_section

TRUNC = {"max_length": 128, "truncation": "head"}


def test_a_long_card_is_cut_at_a_line_and_says_where_the_rest_is() -> None:
    card = "# m\n\n" + "\n".join(f"- line {i} " + "word " * 20 for i in range(200))
    text = description(card)
    assert len(text) <= 5000 and text.endswith("(continued in model_card.md)")
    assert text.removesuffix("(continued in model_card.md)").rstrip().endswith("word")  # no word cut in two
    assert description("# short card\n") == "# short card\n"


def test_use_names_champion_only_for_a_promoted_version() -> None:
    assert 'models:/tickets@champion"' in use_section("tickets", TRUNC)
    rejected = use_section("tickets", TRUNC, promoted=False)
    assert '@champion"' not in rejected and 'models:/tickets@challenger"' in rejected
    assert "ftpipe gate" in rejected
