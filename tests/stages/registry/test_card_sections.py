"""The model card names its base checkpoint and data source with their hashes, says what it is for and
its limits (languages, length, classes and their support), and how to reproduce it.

Registered for real (SQLite store) from a run folder holding the repo's committed dvc.lock and ingest and
validate reports, and a model folder whose ftpipe_params.json names a tiny BERT as its base.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from stages.model.resolve import checkpoint_languages
from stages.registry.lineage import model_hash
from tests.conftest import FIXTURE_REPORTS, REPO
from tests.factories import new_store, register_candidate
from tests.registry_support import Workspace

TRUNC = {"max_length": 64, "truncation": "head", "head_fraction": 0.25, "windows": 2}


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("card")
    run = root / "run"  # what the register stage sees: dvc.lock with reports/ beside it
    (run / "reports").mkdir(parents=True)
    shutil.copy(REPO / "dvc.lock", run / "dvc.lock")
    for name in ("ingest.json", "data_profile.json"):
        shutil.copy(FIXTURE_REPORTS / name, run / "reports" / name)
    ws = Workspace(root / "ws")
    paths = ws.candidate("constant", "constant")
    base = {"model": str(tiny_bert), "source": str(tiny_bert), "trust_remote_code": False}
    (paths["model"] / "ftpipe_params.json").write_text(json.dumps({"base_model": base}))
    _, cand = register_candidate(
        new_store(root),
        ws,
        "carded",
        TRUNC,
        sections={"ingest": {"source": "builtin:bbc-news"}},
        lock_path=run / "dvc.lock",
    )
    # the card served with the model (the run holds the same text as an artifact of its own)
    (path,) = (root / "mlartifacts").rglob("models/*/artifacts/artifacts/model_card.md")
    return {"text": path.read_text(encoding="utf-8"), "base": tiny_bert, "labels": cand.labels}


def section(text: str, title: str) -> str:
    head = f"## {title}"
    assert head in text, f"no `{head}` section:\n{text}"
    return text.split(head, 1)[1].split("\n## ", 1)[0]


def test_the_card_names_the_base_checkpoint_and_its_hash(card: dict[str, Any]) -> None:
    sources = section(card["text"], "Sources")
    assert f"`{card['base']}`" in sources
    assert model_hash(card["base"]) in sources  # weights + config.json, as a registered model's hash


def test_the_card_names_the_data_source_and_its_hashes(card: dict[str, Any]) -> None:
    sources = section(card["text"], "Sources")
    ingest = json.loads((FIXTURE_REPORTS / "ingest.json").read_text())
    assert f"`{ingest['source']}`" in sources and ingest["source_sha256"] in sources
    lock = (REPO / "dvc.lock").read_text()
    raw = lock.split("outs:\n    - path: data/raw\n", 1)[1].split("md5: ", 1)[1].split()[0]
    assert f"`data/raw` (dvc.lock): `{raw}`" in sources


def test_the_card_says_what_it_is_for(card: dict[str, Any]) -> None:
    use = section(card["text"], "Intended use")
    assert all(f"`{label}`" in use for label in card["labels"])
    assert f"one of {len(card['labels'])} labels" in use and 'no "other"' in use


def test_the_card_states_its_limits_with_the_validate_figures(card: dict[str, Any]) -> None:
    limits = section(card["text"], "Limitations")
    head = json.loads((FIXTURE_REPORTS / "data_profile.json").read_text())["headline"]
    assert f"{head['unk_share']:.2%} of the tokens were unknown" in limits
    assert f"{head['truncated_share']:.2%} of the training texts were cut" in limits
    assert "2 window(s) of 64 tokens" in limits and "`tokenize.truncation` = `head`" in limits
    assert "the base checkpoint's card states no language" in limits  # the tiny BERT has no README
    assert "`BertTokenizer`" not in limits or "vocabulary" in limits
    classes = json.loads((FIXTURE_REPORTS / "data_profile.json").read_text())["splits"]
    train = classes["train"]["classes"]["business"]["rows"]
    test = classes["test"]["classes"]["business"]["rows"]
    assert "| class | train | validation | test |" in limits and f"| business | {train} |" in limits
    assert f" | {test} |" in limits


def test_the_card_says_how_to_reproduce(card: dict[str, Any]) -> None:
    how = section(card["text"], "How to reproduce")
    assert "git checkout " in how and "dvc repro" in how and "ftpipe run" in how
    assert "params.yaml" in how and "sha256 `" in how


def test_the_base_checkpoints_languages_come_from_its_own_card(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "README.md").write_text("---\nlanguage:\n- en\n- de\nlicense: mit\n---\n# model\n")
    assert checkpoint_languages(str(tmp_path)) == ["en", "de"]
    (tmp_path / "README.md").write_text("# no front matter\nlanguage: fr\n")
    assert checkpoint_languages(str(tmp_path)) == []
