"""`ftpipe init`: its pure core (name check, refusal, the params edit) and the command on a real repo copy."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from flows.commands.cli import build_parser
from flows.commands.init import (
    EXAMPLE_MODEL_NAME,
    InitError,
    check_name,
    dataset_keys,
    edit_params,
    placement,
    refusal,
)
from stages.config.params import validate_section
from stages.config.register import RegisterParams
from tests.conftest import REPO, make_corpus, make_pipeline_repo

SHIPPED = (REPO / "params.yaml").read_text(encoding="utf-8")


def test_names_are_checked_with_register_model_names_rule() -> None:
    check_name("support-tickets.v2_en")
    for bad in ("", "has space", "-leading", "a/b", "x" * 101, "models:/x"):
        with pytest.raises(InitError, match="cannot be a registered model name"):
            check_name(bad)


def test_only_another_models_setup_is_refused_without_force() -> None:
    assert refusal(None, "tickets", False) is None  # no params.yaml, or no name: the default applies
    assert refusal(EXAMPLE_MODEL_NAME, "tickets", False) is None  # the shipped example
    assert refusal("tickets", "tickets", False) is None  # new data for the same model
    assert refusal("reviews", "tickets", True) is None
    why = refusal("reviews", "tickets", False)
    assert why and "set up for registered model `reviews`" in why and "--force" in why
    assert "`ftpipe init reviews --csv ...`" in why


def test_the_edit_keeps_comments_and_changes_only_the_dataset_keys() -> None:
    keys = dataset_keys("tickets", "data/external/t.csv", "message", "topic", "ticket_id")
    text, changes = edit_params(SHIPPED, keys, {})
    assert [k for k, _, _ in changes] == [
        "ingest.source",
        "ingest.format",
        "ingest.text_field",
        "ingest.label_field",
        "ingest.id_field",
        "register.model_name",
    ]
    before, after = SHIPPED.splitlines(), text.splitlines()
    assert len(before) == len(after)
    differ = [a for b, a in zip(before, after, strict=True) if a != b]
    assert len(differ) == len(changes)  # one line per changed key, its comment kept
    assert [ln for ln in before if "#" in ln] == [ln for ln in after if "#" in ln]
    data = yaml.safe_load(text)
    assert validate_section("register", data["register"], RegisterParams).model_name == "tickets"
    assert data["ingest"]["id_field"] == "ticket_id" and data["label"]["labels"] is None
    # run again: nothing to change, the text comes back byte for byte
    assert edit_params(text, keys, {}) == (text, [])


def test_an_end_of_line_comment_stays_on_its_key() -> None:
    text = "register:\n  model_name: ftpipe-bbc-news   # the registered model\n  retries: 4\n"
    new, _ = edit_params(text, {"register.model_name": "tickets"}, {})
    assert new == "register:\n  model_name: tickets           # the registered model\n  retries: 4\n"


def test_the_old_datas_label_filter_and_ingest_knobs_go_back_to_defaults() -> None:
    old = yaml.safe_load(SHIPPED)
    old["label"] |= {"labels": ["business", "tech"], "aliases": {"sport": "sports"}}
    old["ingest"] |= {"max_rows": 50, "fallback_encodings": []}
    text, changes = edit_params(
        yaml.safe_dump(old, sort_keys=False), dataset_keys("t", "a.csv", "text", "label", None), {}
    )
    data = yaml.safe_load(text)
    assert data["label"]["labels"] is None and data["label"]["aliases"] == {}
    assert data["ingest"]["max_rows"] is None and data["ingest"]["fallback_encodings"] == ["cp1252"]
    assert {"label.labels", "label.aliases", "ingest.max_rows"} <= {k for k, _, _ in changes}


def test_a_csv_outside_data_external_is_placed_there(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    inside = root / "data" / "external" / "sub" / "t.csv"
    assert placement(inside, root, ["data/external"]) == (inside, "data/external/sub/t.csv")
    outside = tmp_path / "exports" / "t.csv"
    assert placement(outside, root, ["data/external"]) == (
        root / "data/external/t.csv",
        "data/external/t.csv",
    )


def _write_csv(path: Path, rows: list[dict[str, str]], fields: tuple[str, ...]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(fields)
        w.writerows([r["id"], r["text"], r["label"]] for r in rows)
    return path


def _init(root: Path, *args: str) -> int:
    parsed = build_parser().parse_args(["init", *args, "--root", str(root)])
    return int(parsed.func(parsed))


def test_the_command_copies_checks_writes_and_refuses_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_pipeline_repo(tmp_path / "repo", {})
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    export = _write_csv(tmp_path / "export.csv", make_corpus(4), ("doc", "body", "topic"))

    # a wrong column: told which option names it, and nothing changes
    assert _init(root, "news", "--csv", str(export)) == 2
    assert "no column 'text'" in capsys.readouterr().err
    assert (root / "params.yaml").read_text() == SHIPPED and not (root / "data/external/export.csv").exists()

    args = ("--csv", str(export), "--text-column", "body", "--label-column", "topic", "--id-column", "doc")
    assert _init(root, "news", *args) == 0
    out = capsys.readouterr().out
    assert "copied" in out and "12 rows; 3 labels: " in out and "ftpipe run" in out
    assert (root / "data/external/export.csv").read_bytes() == export.read_bytes()
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert (
        params["ingest"]["source"] == "data/external/export.csv"
        and params["register"]["model_name"] == "news"
    )

    # another model name: refused, params.yaml untouched; --force replaces it
    written = (root / "params.yaml").read_text()
    assert _init(root, "other", *args) == 2
    assert "set up for registered model `news`" in capsys.readouterr().err
    assert (root / "params.yaml").read_text() == written
    assert _init(root, "other", *args, "--force") == 0
    assert yaml.safe_load((root / "params.yaml").read_text())["register"]["model_name"] == "other"

    # no params.yaml at all: one is written from the params classes' defaults
    (root / "params.yaml").unlink()
    assert _init(root, "news", *args) == 0
    assert "was missing" in capsys.readouterr().out
    check = build_parser().parse_args(["check", "--root", str(root)])
    assert check.func(check) == 0  # every section, as `ftpipe check` sees it

    # a different file of the same name under data/external is not overwritten without --force
    _write_csv(export, make_corpus(5), ("doc", "body", "topic"))
    assert _init(root, "news", *args) == 2
    assert "exists and differs" in capsys.readouterr().err
