"""The check stage: every params problem, one line each, and under `dvc repro` before any output is removed.

The DVC half runs in a temporary git + DVC repo holding a copy of `stages/`, the real `dvc.yaml`, a small
CSV under data/external/ and a tiny tokenizer built in-process, up to `label` (like test_data_pipeline).
"""

from __future__ import annotations

import csv
import importlib
import shutil
from pathlib import Path

import pytest
import yaml

from stages.check import STAGE_MODELS, check_file, check_params, tracked_keys
from stages.config.sections import FLOW_SECTIONS
from tests.conftest import REPO, make_pipeline_repo, run_cmd

TRACKED = {"clean.min_words": ["clean"], "clean.dedupe": ["clean"], "label.seed": ["label"]}


def test_shipped_params_pass_and_every_stage_has_its_class_here() -> None:
    assert check_file(REPO / "params.yaml", REPO / "dvc.yaml") == []
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(stages) == {"check", "drift", *STAGE_MODELS}  # drift reads register's section
    for stage, cls in STAGE_MODELS.items():  # the class the stage itself loads its section with
        assert getattr(importlib.import_module(f"stages.{stage}"), f"{stage.capitalize()}Params") is cls


def test_every_problem_is_one_line_in_file_order() -> None:
    data = {
        "clean": {"min_words": -1, "lowercse": True},
        "notes": {"a": 1},
        "finetune": {"learning_rate": -1e-4},
        "retrain": {"anything": 1},  # the flow's section: known here, validated by `ftpipe check`
    }
    problems = check_params(data, TRACKED)
    assert problems == [
        "`clean.min_words` = -1 is invalid: Input should be greater than or equal to 0",
        "unknown key `clean.lowercse` (value True); allowed keys here: dedupe, fold_whitespace, lowercase, "
        "max_chars, max_reject_fraction, min_words, strip_ansi, strip_control, strip_html, unicode_form, "
        "warn_class_fraction",
        "`clean.dedupe` is missing; dvc.yaml's stage `clean` tracks it (DVC would run that stage and fail "
        "only after removing its outputs)",
        f"unknown section `notes`; the sections are: {', '.join(sorted({*STAGE_MODELS, *FLOW_SECTIONS}))}",
        "`finetune.learning_rate` = -0.0001 is invalid: Input should be greater than 0",
        "section `label` is missing; dvc.yaml's stage `label` tracks keys in it. Add a `label:` block "
        "(docs/params.md lists its keys).",
    ]


def test_a_check_across_keys_names_the_section_and_a_bad_file_is_one_problem(tmp_path: Path) -> None:
    assert check_params({"clean": {"min_words": 50, "max_chars": 10}}) == [
        "section `clean`: Value error, min_words (50) cannot be met under max_chars (10): a word is at least "
        "one character"
    ]
    assert check_params({"clean": [1]}) == [
        "section `clean` must be a mapping of keys to values, got list [1]"
    ]
    bad = tmp_path / "params.yaml"
    bad.write_text("clean: {min_words: [\n")
    assert len(check_file(bad, tmp_path / "dvc.yaml")) == 1 and "not valid YAML" in check_file(bad)[0]


def test_keys_for_label_sets_are_refused_while_the_task_is_single_label() -> None:
    data = {
        "ingest": {"label_separator": "|"},
        "finetune": {"metric": "micro_f1"},
        "register": {"gate": {"primary_metric": "macro_f1"}},
    }
    assert check_params(data) == [
        "`ingest.label_separator` = '|' is for label sets, but `label.task` is single_label: set label.task "
        "to multi_label, or remove the key",
        "`finetune.metric` = 'micro_f1' is for label sets, but `label.task` is single_label: set label.task "
        "to multi_label, or pick a single-label metric",
    ]
    assert check_params({**data, "label": {"task": "multi_label"}}) == []


def test_tracked_keys_reads_string_and_file_entries(tmp_path: Path) -> None:
    dvc = tmp_path / "dvc.yaml"
    dvc.write_text(
        "stages:\n  a:\n    cmd: x\n    params: [a.k, {params.yaml: [b.k]}, {other.yaml: [c.k]}]\n"
        "  b:\n    cmd: y\n    params: [{params.yaml: null}, a.k]\n"
    )
    assert tracked_keys(dvc) == {"a.k": ["a", "b"], "b.k": ["a"]}
    assert tracked_keys(tmp_path / "absent.yaml") == {}


@pytest.mark.parametrize(
    "source",
    ["builtin:bbc-news", "data/external/news.csv", "data/external/batches/*.jsonl", "data/external", "ABS"],
)
def test_a_source_under_data_external_passes(tmp_path: Path, source: str) -> None:
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    source = str(tmp_path / "data/external/news.csv") if source == "ABS" else source
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": {"source": source}}))
    assert not [
        p for p in check_file(tmp_path / "params.yaml", tmp_path / "dvc.yaml") if "ingest.source" in p
    ]


@pytest.mark.parametrize(
    "source", ["news.csv", "data/news.csv", "data/external/../news.csv", "/srv/news/*.csv", "ABS"]
)
def test_a_source_dvc_does_not_track_is_refused_with_a_hint(tmp_path: Path, source: str) -> None:
    """Issue 13: a source outside data/external is no dependency of ingest; editing it reran nothing."""
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    source = str(tmp_path.parent / "news.csv") if source == "ABS" else source
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": {"source": source}}))
    problems = [
        p for p in check_file(tmp_path / "params.yaml", tmp_path / "dvc.yaml") if "ingest.source" in p
    ]
    assert len(problems) == 1
    assert f"`ingest.source` = {source!r} is outside data/external" in problems[0]
    assert "DVC does not see it change" in problems[0] and "dvc add data/external/" in problems[0]


# ----------------------------------------------------------------------------- under `dvc repro`


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, corpus: list[dict[str, str]]) -> Path:
    root = make_pipeline_repo(
        tmp_path_factory.mktemp("check-pipeline"),
        {
            "ingest": {"source": "data/external/news.csv", "id_field": "id"},
            "tokenize": {"model": str(tiny_bert), "max_length": 16},
        },
    )
    with open(root / "data" / "external" / "news.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "text", "label"])
        w.writeheader()
        w.writerows(corpus)
    out = run_cmd(["dvc", "repro", "label"], root).stdout
    assert out.index("Running stage 'check'") < out.index("Running stage 'ingest'")
    return root


def outputs(root: Path) -> dict[str, bytes]:
    """Every output of ingest..label and its report, by path."""
    found = [p for d in ("data/raw", "data/interim", "data/processed") for p in (root / d).rglob("*")]
    found += [p for p in (root / "reports").iterdir() if p.name != "check.json"]
    return {str(p.relative_to(root)): p.read_bytes() for p in found if p.is_file()}


def repro(root: Path) -> tuple[int, str]:
    proc = run_cmd(["dvc", "repro", "label"], root, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def edit_params(root: Path, change: dict[str, dict[str, object]]) -> str:
    """Apply `change` ({section: {key: value}}) to ROOT/params.yaml; return the original text."""
    path = root / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    for section, keys in change.items():
        params[section].update(keys)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return original


def test_a_noop_repro_stays_a_noop(repo: Path) -> None:
    rc, out = repro(repo)
    assert rc == 0 and "Running stage" not in out


def test_bad_values_stop_dvc_repro_before_any_output_is_removed(repo: Path) -> None:
    before = outputs(repo)
    assert "data/interim/clean.parquet" in before and "reports/clean.json" in before
    original = edit_params(repo, {"clean": {"min_words": -1}, "finetune": {"learning_rate": -1e-4}})
    try:
        rc, out = repro(repo)
        assert rc != 0
        assert out.count("`clean.min_words` = -1 is invalid") == 1
        assert out.count("`finetune.learning_rate` = -0.0001 is invalid") == 1
        assert [line for line in out.splitlines() if line.startswith("Running stage")] == [
            "Running stage 'check':"
        ]
        assert outputs(repo) == before  # (without the check, DVC deleted data/interim and clean.json)
    finally:
        (repo / "params.yaml").write_text(original)
    rc, out = repro(repo)  # fixed: the check's report comes back (its only output), nothing else runs
    assert rc == 0 and not [line for line in out.splitlines() if line.startswith("Running stage")], out
    # DVC's run cache restores it: the params are those it last passed with (reports are cached outputs)
    assert "Stage 'check' is cached - skipping run, checking out outputs" in out, out
    assert outputs(repo) == before


def test_an_unknown_key_of_an_up_to_date_stage_is_reported(repo: Path) -> None:
    original = edit_params(repo, {"clean": {"lowercse": True}})
    try:
        assert "up to date" in run_cmd(["dvc", "status", "clean"], repo).stdout  # DVC alone ignores it
        rc, out = repro(repo)
        assert rc != 0 and out.count("unknown key `clean.lowercse` (value True)") == 1
    finally:
        (repo / "params.yaml").write_text(original)
    assert repro(repo)[0] == 0
