"""register: the gate's pure parts, then registrations against a real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stages.config.register import GateParams, RegisterParams, RetryPolicy
from stages.core.redact import mask_secrets, redact_uri
from stages.gate.checks import Candidate, ChampionScore, mcnemar, run_gate
from stages.registry.client import Registry
from stages.registry.inputs import RegisterError, load_candidate, trained_on_from_splits
from stages.registry.lineage import dvc_lock_hashes, lineage_tags, loggable_params, model_hash
from stages.registry.register_run import register
from stages.registry.tracking import TrackingUnavailable, is_transient, with_retries
from stages.reports.finetune import FinetuneReport
from tests.conftest import REPO, run_cmd
from tests.registry_support import Proxy, Workspace, free_port, hanging_server, wait_http

PASSWORD = "".join(["s3", "cret"])  # spelled apart, so a traceback's source lines never hold it
TRUNC = {"max_length": 128, "truncation": "head", "head_fraction": 0.25}
# permissive absolute checks, so the tiny models' quality decides through the champion comparison; the
# superiority policy (significantly better) is the rule these lifecycle tests were written for
GATE = GateParams(
    policy="superiority",
    min_primary=0.1,
    baseline_tolerance=1.0,
    baseline_margin=-1.0,
    min_improvement=0.0,
    significance=0.05,
)


# --------------------------------------------------------------------------- pure parts


def test_mcnemar_exact_for_few_discordant_pairs_chi2_for_many() -> None:
    p, method = mcnemar(10, 0)
    assert method == "exact-binomial" and p == pytest.approx(2 * 0.5**10)
    assert mcnemar(0, 0) == (1.0, "exact-binomial")
    p, method = mcnemar(30, 10)
    assert method == "chi2-continuity" and p == pytest.approx(0.002663, rel=1e-3)  # (|30-10|-1)^2/40 = 9.025


def _candidate(correct: list[int], labels: list[str] | None = None, f1: float = 0.9) -> Candidate:
    labels = labels or ["a", "b"]
    truth = ["a", "b"] * (len(correct) // 2)
    pred = [t if ok else ("b" if t == "a" else "a") for t, ok in zip(truth, correct, strict=True)]
    test = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(truth))],
            "text": ["x"] * len(truth),
            "label": truth,
            "pred": pred,
            "correct": correct,
        }
    )
    metrics = {"primary_metric": "macro_f1", "model": {"macro_f1": f1}, "baseline": {"macro_f1": 0.8}}
    return Candidate(Path("."), metrics, "macro_f1", labels, test)


def test_gate_without_champion_uses_only_the_absolute_checks() -> None:
    d = run_gate(GateParams(min_primary=0.95), _candidate([1] * 20, f1=0.9), None)
    assert not d.promote
    by = {c.name: c for c in d.checks}
    assert by["floor"].outcome == "fail" and "register.gate.min_primary" in by["floor"].reason
    assert by["baseline"].outcome == "pass"
    assert {by[n].outcome for n in ("labels", "margin", "significance", "per_class", "drift")} == {"skip"}
    assert run_gate(GateParams(min_primary=0.5), _candidate([1] * 20), None).promote


def test_gate_against_a_champion_needs_a_significant_gain_and_the_same_labels() -> None:
    cand = _candidate([1] * 20)
    truth = cand.test["label"].tolist()
    wrong_half = [("b" if t == "a" else "a") if i < 12 else t for i, t in enumerate(truth)]
    d = run_gate(GATE, cand, ChampionScore("1", ["a", "b"], wrong_half))
    assert d.promote, d.checks
    assert d.comparison["only_candidate_right"] == 12 and d.comparison["only_champion_right"] == 0
    assert d.comparison["mcnemar_p"] == pytest.approx(2 * 0.5**12)
    # a champion that is just as good: no significant difference
    d = run_gate(GATE, cand, ChampionScore("1", ["a", "b"], truth))
    by = {c.name: c for c in d.checks}
    assert (
        not d.promote
        and by["significance"].outcome == "fail"
        and "not significantly" in by["significance"].reason
    )
    # a different label set fails unless declared
    d = run_gate(GATE, cand, ChampionScore("1", ["a", "b", "c"], wrong_half))
    assert {c.name: c.outcome for c in d.checks}["labels"] == "fail"
    gate = GATE.model_copy(update={"allow_label_change": True})
    assert run_gate(gate, cand, ChampionScore("1", ["a", "b", "c"], wrong_half)).promote
    # a champion that cannot be scored blocks promotion, with the reason
    d = run_gate(GATE, cand, ChampionScore("1", ["a", "b"], None, "OSError: gone"))
    assert not d.promote and "OSError: gone" in {c.name: c for c in d.checks}["improvement"].reason


def test_model_hash_follows_weights_and_config_only(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"w1")
    h = model_hash(tmp_path)
    (tmp_path / "ftpipe_params.json").write_text('{"at": "now"}')
    assert model_hash(tmp_path) == h
    (tmp_path / "model.safetensors").write_bytes(b"w2")
    assert model_hash(tmp_path) != h


def test_params_are_flattened_and_secrets_left_out() -> None:
    out = loggable_params(
        {
            "tokenize": {"model": "m", "max_length": 128},
            "ingest": {"api_key": "s3cr3t"},
            "x": {"password": "p", "labels": ["a", "b"]},
        }
    )
    assert out == {"tokenize.model": "m", "tokenize.max_length": "128", "x.labels": '["a", "b"]'}
    assert redact_uri("http://bob:hunter2@host:5000/x") == "http://bob:***@host:5000/x"


def test_dvc_lock_hashes_keep_data_and_model_outputs(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n  label:\n    outs:\n    - path: data/processed/splits\n      md5: abc.dir\n"
        "    - path: reports/label.json\n      md5: def\n  finetune:\n    outs:\n    - path: models/model\n"
        "      md5: 123.dir\n"
    )
    assert dvc_lock_hashes(lock) == {"data/processed/splits": "abc.dir", "models/model": "123.dir"}
    assert dvc_lock_hashes(tmp_path / "missing.lock") == {}


def test_lineage_dirty_ignores_what_the_run_itself_rewrites(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for f in ("dvc.lock", "stage.py", "reports/m.json"):
        (tmp_path / f).parent.mkdir(exist_ok=True)
        (tmp_path / f).write_text("1")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    (tmp_path / "dvc.lock").write_text("2")
    (tmp_path / "reports/m.json").write_text("2")
    tags = lineage_tags(tmp_path, tmp_path / "dvc.lock", ["a"], {}, "h")
    assert tags["git.dirty"] == "false" and len(tags["git.commit"]) == 40
    (tmp_path / "stage.py").write_text("2")
    tags = lineage_tags(tmp_path, tmp_path / "dvc.lock", ["a"], {}, "h")
    assert tags["git.dirty"] == "true" and tags["git.dirty_files"] == "stage.py"


def test_ids_and_labels_come_back_from_the_escaped_predictions_csv(tmp_path: Path) -> None:
    """evaluate escapes formula-like cells of predictions.csv (`'=...`); register reads the ids back as
    they are in the test split, or every such row would look stale."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    from stages.model.predictions import predictions_table, write_csv

    names, ids = ["-neg", "pos"], ['=HYPERLINK("http://x.example","c")', "-7", "@a", "'q", "plain"]
    y = [0, 1, 0, 1, 1]
    feats = Features({"id": Value("string"), "text": Value("string"), "label": ClassLabel(names=names)})
    test = Dataset.from_dict({"id": ids, "text": ["t"] * 5, "label": y}, features=feats)
    (tmp_path / "model").mkdir()
    (tmp_path / "model/config.json").write_text(json.dumps({"id2label": {"0": "-neg", "1": "pos"}}))
    (tmp_path / "labels.json").write_text(json.dumps({"0": "-neg", "1": "pos"}))
    metrics = {
        "primary_metric": "macro_f1",
        "model": {"accuracy": 0.6, "macro_f1": 0.8},
        "baseline": {"accuracy": 0.6, "macro_f1": 0.7},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    write_csv(tmp_path / "predictions.csv", predictions_table(ids, np.array(y), probs, probs, names))
    cand = load_candidate(
        tmp_path / "model",
        tmp_path / "metrics.json",
        tmp_path / "predictions.csv",
        DatasetDict({"test": test}),
        tmp_path / "labels.json",
    )
    assert cand.test["id"].tolist() == ids
    assert cand.test["pred"].tolist() == ["-neg", "pos", "pos", "-neg", "pos"]
    assert cand.test["correct"].tolist() == [1, 1, 0, 0, 1]


def test_served_encoding_matches_the_tokenize_stage(tiny_bert: Path, corpus: list[dict[str, str]]) -> None:
    from transformers import AutoTokenizer

    from stages.config.tokenize import TokenizeParams
    from stages.serving.textclf import encode
    from stages.tokenize import encode_batch

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [r["text"] for r in corpus[:8]]
    for policy in ("head", "tail", "head+tail"):
        for windows in (1, 3):
            p = TokenizeParams(max_length=8, windows=windows, truncation=policy, head_fraction=0.25)
            ours = encode(tok, texts, 8, policy, 0.25, windows)
            assert [[w["input_ids"] for w in row] for row in ours] == encode_batch(tok, texts, p)["windows"]


def test_params_section_loads_with_the_nested_gate() -> None:
    from stages.config.params import ParamsError, load_section, validate_section

    p = load_section("register", RegisterParams, REPO / "params.yaml")
    assert isinstance(p.gate, GateParams)
    with pytest.raises(ParamsError, match="register.gate.signficance"):
        validate_section("register", {"gate": {"signficance": 0.1}}, RegisterParams)


def test_artifacts_live_beside_a_sqlite_store_whatever_the_cwd() -> None:
    from stages.registry.tracking import DEFAULT_DB, default_artifact_location, tracking_uri

    assert default_artifact_location("sqlite:////srv/ml/mlflow.db", "m") == "file:///srv/ml/mlartifacts/m"
    assert default_artifact_location("http://127.0.0.1:5000", "m") is None  # the server decides
    if "MLFLOW_TRACKING_URI" not in os.environ:
        assert tracking_uri(REPO) == f"sqlite:///{REPO / DEFAULT_DB}"


def test_unreachable_server_fails_fast_with_the_uri() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    t = time.monotonic()
    with pytest.raises(TrackingUnavailable, match=f"127.0.0.1:{uri.rsplit(':', 1)[1]}.*2 attempt"):
        Registry.connect(uri, "m", RetryPolicy(retries=1, backoff_s=0.05))
    assert time.monotonic() - t < 20
    waits: list[float] = []
    with pytest.raises(TrackingUnavailable):
        with_retries(lambda: 1 / 0, "sqlite:///x.db", RetryPolicy(3, 0.5), sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0]


def test_retries_stop_at_the_deadline_whatever_the_retry_count() -> None:
    """register.timeout_s bounds a call's retries and waits, however many retries are allowed."""
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    def hang() -> None:  # each attempt takes its whole request timeout
        now[0] += float(os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"])
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # MLflow's own retries are off
        raise TimeoutError("read timed out")

    policy = RetryPolicy(retries=20, backoff_s=1.0, timeout_s=30.0)
    with pytest.raises(
        TrackingUnavailable, match=r"5 attempt.* in 20 s .*timeout_s = 30; last error: no answer in"
    ):
        with_retries(hang, "http://h", policy, sleep=sleep, clock=lambda: now[0])
    # attempts of 1 s (30 s / 21 attempts, at least 1) and waits 1, 2, 4, 8: at 20 s a wait of 16 and
    # one more attempt would pass the deadline, so it stops there, with 15 of the 20 retries unused
    assert now[0] == 20.0 and waits == [1.0, 2.0, 4.0, 8.0]
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ  # restored after the call


def test_masking_removes_uri_passwords_and_credential_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2!")
    text = "API request to http://bob:s3cret@host:5000/api failed; auth hunter2! / hunter2%21"
    assert mask_secrets(text) == "API request to http://bob:***@host:5000/api failed; auth *** / ***"
    assert mask_secrets("no secret at http://host:5000/x") == "no secret at http://host:5000/x"


@pytest.fixture
def secret_uri_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.parametrize("server", ["down", "hanging", "failing"])
def test_a_failing_server_is_bounded_clear_and_masked(server: str) -> None:
    """A down (closed port), hanging (accepts, never answers) or failing (500 to everything) server with a
    password in the URI: TrackingUnavailable within register.timeout_s, saying why, password masked."""
    policy = RetryPolicy(retries=4, backoff_s=0.2, timeout_s=3.0)
    proxy = Proxy("http://127.0.0.1:9", lambda m, p: "fail")  # answers 500 itself, forwards nothing
    try:
        with contextlib.ExitStack() as stack:
            port = {
                "down": free_port,
                "hanging": lambda: stack.enter_context(hanging_server()),
                "failing": lambda: proxy.port,
            }[server]()
            uri = f"http://ftp:{PASSWORD}@127.0.0.1:{port}"
            t = time.monotonic()
            with pytest.raises(TrackingUnavailable) as info:
                Registry.connect(uri, "m", policy)
            took = time.monotonic() - t
    finally:
        proxy.close()
    msg = str(info.value)
    assert took < policy.timeout_s + 1.5, took
    assert f"http://ftp:***@127.0.0.1:{port} did not answer" in msg and "register.timeout_s = 3" in msg
    why = {"down": "connection refused", "hanging": "no answer in time", "failing": "500"}[server]
    assert why in msg, msg
    shown = "".join(traceback.format_exception(info.value))
    assert PASSWORD not in shown and info.value.__cause__ is None


# --------------------------------------------------------------------------- against a real server


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("register-ws"))


def _cand(ws: Workspace, tag: str, kind: str) -> Candidate:
    p = ws.candidate(tag, kind)
    return load_candidate(p["model"], p["metrics"], p["predictions"], p["splits"], p["labels"])


def _register(
    ws: Workspace, uri: str, name: str, cand: Candidate, gate: GateParams = GATE, **kw: Any
) -> dict[str, Any]:
    p = RegisterParams(model_name=name, gate=gate, retries=1, backoff_s=0.2, verify_rows=16)
    kw.setdefault("trained_on", trained_on_from_splits(ws.splits))
    return register(
        p,
        cand,
        uri,
        params={"register": p.model_dump(), "tokenize": TRUNC},
        truncation=TRUNC,
        repo=REPO,
        **kw,
    )


# what the finetune stage reports about a run (reports/finetune.json), as the card reads it
TRAINING = FinetuneReport.model_validate(
    {
        "base_model": "builtin:minilm-l6",
        "device": "cpu",
        "precision": "fp32",
        "precision_reason": "auto: the CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)",
        "num_processes": 1,
        "strategy": "ddp",
        "freeze": "none",
        "pooling": "mean",
        "train_rows": 40,
        "validation_rows": 10,
        "validation_windows": 10,
        "windows_per_train_text": 1.0,
        "epochs_run": 5,
        "stopped_early": False,
        "best_epoch": 3,
        "best_metric": "macro_f1",
        "best_validation": {"loss": 0.5, "macro_f1": 0.8},
        "train_samples_per_s": 8.081,
        "train_runtime_s": 25.0,
        "wall_time_s": 26.0,
        "trainable_params": 100,
        "total_params": 100,
        "resumed_from": None,
    }
)


@pytest.fixture(scope="module")
def lifecycle(ws: Workspace, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Register constant (first: champion), wrong (worse: refused), trained (better: promoted), trained again."""
    lock = tmp_path_factory.mktemp("lock") / "dvc.lock"
    lock.write_text("stages:\n  finetune:\n    outs:\n    - path: models/model\n      md5: feed.dir\n")
    ws_hist = ws.candidate("constant", "constant")["history"]
    out = {"name": "gate-lifecycle"}
    for step, kind in (
        ("first", "constant"),
        ("worse", "wrong"),
        ("better", "trained"),
        ("again", "trained"),
    ):
        t = time.monotonic()
        paths = ws.candidate(kind, kind)
        out[step] = _register(
            ws,
            mlflow_server,
            out["name"],
            _cand(ws, kind, kind),
            lock_path=lock,
            history_path=ws_hist,
            extra_artifacts=[paths["metrics"], paths["predictions"], paths["model"].parent / "absent.png"],
            training=TRAINING if step == "first" else None,
        )
        out[step]["_seconds"] = time.monotonic() - t
    return out


def test_first_registration_becomes_champion(lifecycle: dict[str, Any], mlflow_server: str) -> None:
    r = lifecycle["first"]
    assert r["action"] == "registered" and r["version"] == "1" and r["promoted"]
    assert r["aliases"] == ["challenger", "champion"] and r["champion"] == "1"
    assert {
        c["outcome"] for c in r["gate"]["checks"] if c["name"] in ("labels", "improvement", "significance")
    } == {"skip"}
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    mv = client.get_model_version(lifecycle["name"], "1")
    for tag in (
        "git.commit",
        "git.dirty",
        "labels.sha256",
        "params.sha256",
        "lib.torch",
        "lib.transformers",
        "ftpipe.model_hash",
        "dvc.models/model",
        "gate.floor.outcome",
        "gate.floor.reason",
    ):
        assert tag in mv.tags, tag
    assert mv.tags["dvc.models/model"] == "feed.dir" and mv.tags["ftpipe.status"] == "complete"
    assert mv.description.startswith(f"# {lifecycle['name']}") and "Gate decision" in mv.description
    # the card says how the model was trained: device, precision and why that precision (#15)
    assert "## Training" in mv.description
    assert "`cpu`, `fp32`" in mv.description and TRAINING.precision_reason in mv.description
    assert "best epoch 3 of 5 (validation `macro_f1`)" in mv.description
    run = client.get_run(r["run_id"])
    assert run.data.params["register.model_name"] == lifecycle["name"]
    assert "test.macro_f1" in run.data.metrics and "baseline.macro_f1" in run.data.metrics
    assert [m.value for m in client.get_metric_history(r["run_id"], "history.loss")] == [1.0, 0.5]
    assert run.data.tags["git.commit"] == mv.tags["git.commit"]
    arts = {a.path for a in client.list_artifacts(r["run_id"])} | {
        a.path for a in client.list_artifacts(r["run_id"], "reports")
    }
    assert {
        "model_card.md",
        "reports/metrics.json",
        "reports/predictions.csv",
        "reports/finetune_history.json",
    } <= arts


def test_worse_challenger_is_refused_with_reasons(lifecycle: dict[str, Any], mlflow_server: str) -> None:
    r = lifecycle["worse"]
    assert r["action"] == "registered" and r["version"] == "2" and not r["promoted"]
    assert r["aliases"] == ["challenger"] and r["champion"] == "1"
    by = {c["name"]: c for c in r["gate"]["checks"]}
    assert by["floor"]["outcome"] == "fail" and by["improvement"]["outcome"] == "fail"
    assert by["significance"]["outcome"] == "fail" and "significantly worse" in by["significance"]["reason"]
    cmp = r["gate"]["comparison"]
    assert cmp["rows"] == 30 and cmp["only_champion_right"] == 10 and cmp["only_candidate_right"] == 0
    from mlflow import MlflowClient

    tags = MlflowClient(mlflow_server).get_model_version(lifecycle["name"], "2").tags
    assert tags["gate.decision"] == "reject" and tags["gate.significance.outcome"] == "fail"
    assert float(tags["gate.mcnemar_p"]) == pytest.approx(cmp["mcnemar_p"])


def test_better_challenger_is_promoted(lifecycle: dict[str, Any]) -> None:
    r = lifecycle["better"]
    assert r["version"] == "3" and r["promoted"] and r["aliases"] == ["challenger", "champion"]
    cmp = r["gate"]["comparison"]
    assert cmp["candidate_errors"] == 0 and cmp["mcnemar_p"] < 0.05 and r["gate"]["champion_before"] == "1"


def test_same_model_twice_is_one_version(lifecycle: dict[str, Any], mlflow_server: str) -> None:
    r = lifecycle["again"]
    assert r["action"] == "unchanged" and r["version"] == "3" and r["gate"]["promote"]
    from mlflow import MlflowClient

    versions = MlflowClient(mlflow_server).search_model_versions(f"name = '{lifecycle['name']}'")
    assert len(versions) == 3
    assert r["_seconds"] < lifecycle["better"]["_seconds"]


def test_champion_loads_by_alias_and_predicts(
    lifecycle: dict[str, Any], mlflow_server: str, ws: Workspace
) -> None:
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model(f"models:/{lifecycle['name']}@champion")
    test = _cand(ws, "trained", "trained").test
    out = model.predict(pd.DataFrame({"text": test["text"]}))
    assert list(out.columns) == ["label", "score"] and len(out) == len(test)
    assert out["label"].tolist() == test["label"].tolist()  # the trained model is right on every test row
    assert out["score"].between(0, 1).all()
    assert model.metadata.signature.outputs.input_names() == ["label", "score"]


def test_champion_is_never_scored_on_its_own_training_rows(
    ws: Workspace,
    mlflow_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """v1 on one split; `label.seed` changes, so v2's test rows are mostly v1's train/validation rows: the
    champion is scored only on the rest, and the report says how many were compared and left out."""
    name = "fair-comparison"
    first = _register(ws, mlflow_server, name, _cand(ws, "trained", "trained"), profile=ws.profile())
    assert first["promoted"] and first["trained_on"].startswith("train 120, validation 30")
    v1 = ws.split_rows()
    v1_seen = {r["id"] for s in ("train", "validation") for r in v1[s]}
    v1_texts = {r["text"] for s in ("train", "validation") for r in v1[s]}

    reseeded = Workspace(tmp_path_factory.mktemp("reseeded-ws"), split_seed=7)  # label.seed changed
    test2 = reseeded.split_rows()["test"]
    fresh = [r for r in test2 if r["id"] not in v1_seen]
    assert 0 < len(fresh) < len(test2)  # the new seed moved most of v1's training rows into the test split

    scored: list[list[str]] = []
    real_predict = Registry.predict

    def spy(self: Registry, version: str, texts: list[str]) -> list[str]:
        scored.append(list(texts))
        return real_predict(self, version, texts)

    monkeypatch.setattr(Registry, "predict", spy)
    second = _register(
        reseeded,
        mlflow_server,
        name,
        _cand(reseeded, "trained", "trained"),
        gate=GateParams(
            min_primary=0.1, baseline_tolerance=1.0, baseline_margin=-1.0
        ),  # the default policy: non_inferiority
        profile=reseeded.profile(),
    )
    assert len(scored) == 1 and scored[0] and not set(scored[0]) & v1_texts
    assert sorted(scored[0]) == sorted(r["text"] for r in fresh)
    gate = second["gate"]
    assert gate["policy"] == "non_inferiority"
    assert gate["comparison"]["rows"] == len(fresh)
    assert gate["comparison"]["left_out_seen"] == len(test2) - len(fresh)
    by = {c["name"]: c for c in gate["checks"]}
    assert (
        f"on {len(fresh)} of {len(test2)} test rows ({len(test2) - len(fresh)} left out"
        in by["margin"]["reason"]
    )
    assert (
        by["per_class"]["outcome"] == "skip" and "register.gate.min_class_rows" in by["per_class"]["reason"]
    )
    # drift: v1's stored profile against the new one, the new texts judged without v1's own rows
    assert by["drift"]["outcome"] in ("pass", "warn") and "label JS distance" in by["drift"]["reason"]
    assert gate["drift"]["trained_on_record"] and gate["drift"]["texts"]["candidate_seen"] > 0

    from mlflow import MlflowClient

    tags = MlflowClient(mlflow_server).get_model_version(name, second["version"]).tags
    assert tags["gate.policy"] == "non_inferiority" and tags["gate.rows"] == str(len(fresh))
    assert tags["gate.margin.outcome"] == by["margin"]["outcome"]
    assert tags["ftpipe.trained_on"] == "trained_on.json.gz" and tags["ftpipe.profile"] == "profile.json"


def test_wiped_registry_registers_again(ws: Workspace, mlflow_server: str) -> None:
    from mlflow import MlflowClient

    cand = _cand(ws, "constant", "constant")
    assert _register(ws, mlflow_server, "wiped", cand)["action"] == "registered"
    assert _register(ws, mlflow_server, "wiped", cand)["action"] == "unchanged"
    MlflowClient(mlflow_server).delete_registered_model("wiped")
    r = _register(ws, mlflow_server, "wiped", cand)
    assert r["action"] == "registered" and r["version"] == "1" and r["aliases"] == ["challenger", "champion"]


def test_broken_version_gets_no_alias(ws: Workspace, mlflow_server: str) -> None:
    """A model whose served predictions disagree with the evaluated ones is tagged broken, never aliased."""
    from mlflow import MlflowClient

    good = _cand(ws, "trained", "trained")
    lying = Candidate(
        _cand(ws, "constant", "constant").model_dir, good.metrics, good.primary_metric, good.labels, good.test
    )  # the constant model with the trained model's evaluation
    with pytest.raises(RegisterError, match="broken and got no alias.*agrees with the evaluated predictions"):
        _register(ws, mlflow_server, "broken", lying)
    client = MlflowClient(mlflow_server)
    mv = client.get_model_version("broken", "1")
    assert mv.tags["ftpipe.status"] == "broken" and not mv.aliases
    # the next run registers a fresh version rather than reusing the broken one
    r = _register(ws, mlflow_server, "broken", good)
    assert r["version"] == "2" and r["aliases"] == ["challenger", "champion"]


def test_stale_predictions_are_a_clear_error(ws: Workspace, tmp_path: Path) -> None:
    p = ws.candidate("trained", "trained")
    preds = pd.read_csv(p["predictions"]).head(5)
    preds.to_csv(tmp_path / "predictions.csv", index=False)
    with pytest.raises(RegisterError, match="predictions.csv has 5 rows .* Rerun evaluate"):
        load_candidate(p["model"], p["metrics"], tmp_path / "predictions.csv", p["splits"], p["labels"])


def test_entry_point_writes_the_registry_report(ws: Workspace, mlflow_server: str, tmp_path: Path) -> None:
    import yaml

    p = ws.candidate("trained", "trained")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["register"].update(model_name="entry-point", retries=0)
    params["register"]["gate"].update(min_primary=0.5, baseline_tolerance=0.5, baseline_margin=-0.5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "registry.json"
    proxy = Proxy(mlflow_server)  # the server through a URI with a password (the server ignores it)
    proc = run_cmd(
        [
            sys.executable,
            "-m",
            "stages.register",
            "--params",
            str(tmp_path / "params.yaml"),
            "--model",
            str(p["model"]),
            "--metrics",
            str(p["metrics"]),
            "--predictions",
            str(p["predictions"]),
            "--splits",
            str(p["splits"]),
            "--labels",
            str(p["labels"]),
            "--history",
            str(p["history"]),
            "--artifacts",
            str(tmp_path / "absent.png"),
            "--profile",
            str(tmp_path / "absent-profile.json"),
            "--lock",
            str(tmp_path / "dvc.lock"),
            "--out",
            str(out),
            "--drift",
            str(tmp_path / "absent-drift.json"),
            "--page",
            str(tmp_path / "report.html"),
        ],
        cwd=REPO,
        env={"MLFLOW_TRACKING_URI": proxy.uri(f"ftp:{PASSWORD}")},
    )
    proxy.close()
    report = json.loads(out.read_text())
    assert report["action"] == "registered" and report["name"] == "entry-point"
    assert report["aliases"] == ["challenger", "champion"] and report["tracking_uri"] == proxy.uri("ftp:***")
    assert "absent-profile.json is missing" in report["profile"]  # registered anyway, and says so
    assert report["trained_on"].startswith("train 120, validation 30")

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    mv = client.get_model_version("entry-point", report["version"])
    run = client.get_run(report["run_id"])
    assert mv.tags["tracking_uri"] == proxy.uri("ftp:***")
    stored = json.dumps([mv.tags, mv.description, run.data.tags, run.data.params])
    assert PASSWORD not in out.read_text() + proc.stdout + proc.stderr + stored
    page = (tmp_path / "report.html").read_text(encoding="utf-8")  # the run's page, logged with the version
    (tmp_path / "got").mkdir()
    logged = client.download_artifacts(report["run_id"], "report.html", str(tmp_path / "got"))
    assert Path(logged).read_text(encoding="utf-8") == page and "entry-point version" in page
    assert PASSWORD not in page and "data-chart='confusion'" in page


def _serve(model_uri: str, tracking: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - the process owns it until terminated
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    return proc, f"http://127.0.0.1:{port}"


def test_served_champion_answers_over_http(
    lifecycle: dict[str, Any], mlflow_server: str, tmp_path: Path
) -> None:
    proc, url = _serve(f"models:/{lifecycle['name']}@champion", mlflow_server, tmp_path)
    try:
        try:
            wait_http(f"{url}/ping", 120, proc)
        except Exception:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from None
        body = json.dumps(
            {
                "dataframe_records": [
                    {"text": "market shares profit bank economy company"},
                    {"text": "match goal team player coach league season"},
                ]
            }
        )
        req = urllib.request.Request(
            f"{url}/invocations", body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            preds = json.loads(r.read())["predictions"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert [p["label"] for p in preds] == ["business", "sport"]
    assert all(0 < p["score"] <= 1 for p in preds)


# --------------------------------------------------------------------------- the registry under faults


def _crash(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt  # the process dies here: nothing after it runs, no handler cleans up


def test_a_server_that_hangs_mid_registration_stops_it_within_timeout_s(
    ws: Workspace, mlflow_server: str
) -> None:
    """The store answers the first calls, then stops answering (at the first artifact upload): the later
    calls are under the same policy, so register stops within register.timeout_s of the hang, saying why,
    with the password masked, and no version is created."""
    hung_at: list[float] = []

    def rule(method: str, path: str) -> str:
        if "mlflow-artifacts" in path:
            hung_at.append(time.monotonic())
            return "hang"
        return "forward"

    proxy = Proxy(mlflow_server, rule)
    try:
        p = RegisterParams(model_name="hang-mid", gate=GATE, retries=4, backoff_s=0.2, timeout_s=3)
        with pytest.raises(TrackingUnavailable) as info:
            register(
                p, _cand(ws, "trained", "trained"), proxy.uri(f"ftp:{PASSWORD}"), params={}, truncation=TRUNC
            )
        took = time.monotonic() - hung_at[0]
    finally:
        proxy.close()
    print(f"register stopped {took:.1f} s after the server hung")
    assert took < 4.5, took
    msg = str(info.value)
    assert "did not answer" in msg and "no answer in time" in msg and "ftp:***@" in msg
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    assert client.search_model_versions("name = 'hang-mid'") == []


def test_a_version_left_pending_is_resumed_not_duplicated(
    ws: Workspace, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the version was created and before it was verified: the rerun finishes that version
    (verify, gate, aliases) instead of registering a second one."""
    from mlflow import MlflowClient

    name, cand = "resume-pending", _cand(ws, "trained", "trained")
    with monkeypatch.context() as m:
        m.setattr(Registry, "verify", _crash)
        with pytest.raises(KeyboardInterrupt):
            _register(ws, mlflow_server, name, cand)
    client = MlflowClient(mlflow_server)
    (mv,) = client.search_model_versions(f"name = '{name}'")
    assert mv.tags["ftpipe.status"] == "pending" and not mv.aliases
    r = _register(ws, mlflow_server, name, cand)
    assert r["resumed"] and r["version"] == "1" and r["aliases"] == ["challenger", "champion"]
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    mv = client.get_model_version(name, "1")
    assert mv.tags["ftpipe.status"] == "complete" and float(mv.tags["ftpipe.verify_agreement"]) >= 0.95
    assert _register(ws, mlflow_server, name, cand)["action"] == "unchanged"


def test_a_resumed_alias_move_runs_the_gate_again(
    ws: Workspace, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after verification, before the aliases: the rerun decides again (here the gate's floor was
    raised in between) and the old "promote" is not reused."""
    from mlflow import MlflowClient

    name, cand = "resume-verified", _cand(ws, "constant", "constant")
    with monkeypatch.context() as m:
        m.setattr(Registry, "finish", _crash)
        with pytest.raises(KeyboardInterrupt):
            _register(ws, mlflow_server, name, cand)  # the first version of its model: promote
    client = MlflowClient(mlflow_server)
    mv = client.get_model_version(name, "1")
    assert mv.tags["ftpipe.status"] == "verified" and mv.tags["gate.decision"] == "promote"
    stricter = GATE.model_copy(update={"min_primary": 0.9})
    r = _register(ws, mlflow_server, name, cand, gate=stricter)
    assert r["resumed"] and r["version"] == "1" and not r["promoted"] and r["aliases"] == ["challenger"]
    mv = client.get_model_version(name, "1")
    assert mv.tags["gate.decision"] == "reject" and mv.tags["gate.floor.outcome"] == "fail"
    assert mv.tags["ftpipe.status"] == "complete" and "champion" not in mv.aliases
    assert json.loads(mv.tags["ftpipe.gate"])["promote"] is False
    assert "): stays challenger" in client.get_model_version(name, "1").description  # the new card


def test_register_stage_against_a_hanging_server_stops_clearly_and_leaks_nothing(
    ws: Workspace, tmp_path: Path
) -> None:
    """The stage's own process, a password in MLFLOW_TRACKING_URI, a server that never answers and
    register.timeout_s = 3: exit 1 within seconds, a masked one-line reason last, no report written."""
    import yaml

    p = ws.candidate("trained", "trained")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["register"].update(model_name="hanging", timeout_s=3, backoff_s=0.2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "registry.json"
    args = [
        "--model",
        str(p["model"]),
        "--metrics",
        str(p["metrics"]),
        "--predictions",
        str(p["predictions"]),
    ]
    args += ["--splits", str(p["splits"]), "--labels", str(p["labels"]), "--out", str(out)]
    with hanging_server() as port:
        proc = subprocess.run(
            [sys.executable, "-m", "stages.register", "--params", str(tmp_path / "params.yaml"), *args],
            cwd=REPO,
            env={**os.environ, "MLFLOW_TRACKING_URI": f"http://ftp:{PASSWORD}@127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert (  # one masked paragraph, no traceback (issue 22)
        f" register ERROR TrackingUnavailable: MLflow tracking store at http://ftp:***@127.0.0.1:{port} did not answer"
        in last
    )
    assert "register.timeout_s = 3; last error: no answer in time" in last
    took = float(re.search(r"attempt\(s\) in (\d+) s", last)[1])
    assert took <= 3
    assert PASSWORD not in proc.stderr + proc.stdout and not out.exists()


def test_a_definite_answer_is_not_retried_and_keeps_its_code_but_not_the_password() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    calls = []

    def not_found() -> None:
        calls.append(1)
        raise MlflowException(
            f"API request to http://ftp:{PASSWORD}@h/x: no such model", RESOURCE_DOES_NOT_EXIST
        )

    with pytest.raises(MlflowException) as info:
        with_retries(not_found, "http://h", RetryPolicy(retries=3), retry_if=is_transient)
    assert calls == [1] and info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "ftp:***@h" in info.value.message and PASSWORD not in str(info.value)
