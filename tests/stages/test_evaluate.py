"""evaluate on a tiny saved classifier: metrics.json shape, predictions, confusion data, worst errors."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages import evaluate
from stages.evaluate import predict_proba  # the one library-like function a script keeps (see its doc)
from stages.model.evaluation import EvaluateError
from stages.serving.manifest import ManifestError, write_folder_manifest
from tests.conftest import REPO, build_splits, run_cmd

METRIC_KEYS = {
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
    "ece",
    "per_class",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, corpus: list[dict]) -> dict[str, Path]:
    """Splits plus a saved (random-head) classifier with the same labels and the default mean-pooling head."""
    from transformers import AutoTokenizer

    from stages.serving.meanpool import MeanPoolForSequenceClassification

    tmp = tmp_path_factory.mktemp("evaluate")
    splits, labels = build_splits(tiny_bert, corpus, tmp / "data")
    names = ["business", "sport", "tech"]
    model = MeanPoolForSequenceClassification.from_body(
        str(tiny_bert),
        num_labels=3,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    model.save_pretrained(tmp / "model")
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp / "model")
    write_folder_manifest(tmp / "model")  # as finetune does
    params = tmp / "params.yaml"
    # evaluate reads tokenize.trust_remote_code (default false) from the project's params, never the folder
    params.write_text("tokenize: {}\nevaluate:\n  worst_errors: 3\n  excerpt_chars: 30\n")
    return {"tmp": tmp, "splits": splits, "labels": labels, "model": tmp / "model", "params": params}


def outputs(tmp: Path) -> dict[str, Path]:
    r = tmp / "reports"
    return {
        "metrics": r / "metrics.json",
        "headline": r / "headline.json",
        "predictions": r / "predictions.csv",
        "confusion": r / "confusion.json",
        "confusion-png": r / "confusion.png",
        "errors": r / "worst_errors.csv",
    }


def argv(s: dict[str, Path], out: dict[str, Path]) -> list[str]:
    args = [
        "--params",
        str(s["params"]),
        "--splits",
        str(s["splits"]),
        "--labels",
        str(s["labels"]),
        "--model",
        str(s["model"]),
    ]
    for k, v in out.items():
        args += [f"--{k}", str(v)]
    return args


def test_entry_point_writes_every_report(setup: dict[str, Path]) -> None:
    out = outputs(setup["tmp"])
    run_cmd(["python", "-m", "stages.evaluate", *argv(setup, out)], cwd=REPO, timeout=300)

    m = json.loads(out["metrics"].read_text())
    assert m["primary_metric"] == "macro_f1"
    assert set(m["model"]) == set(m["baseline"]) == METRIC_KEYS
    assert set(m["model"]["per_class"]) == {"business", "sport", "tech"}
    assert set(m["model"]["per_class"]["tech"]) == {"precision", "recall", "f1", "support"}
    assert m["test_rows"] == 15 and sum(c["support"] for c in m["model"]["per_class"].values()) == 15
    assert m["inference"]["examples_per_s"] > 0 and m["inference"]["device"] in {"cpu", "cuda"}
    for k in ("accuracy", "macro_f1", "weighted_f1"):
        assert m["delta"][k] == pytest.approx(m["model"][k] - m["baseline"][k])
    assert m["baseline"]["accuracy"] >= 0.9  # the keyword corpus is easy for TF-IDF
    headline = json.loads(out["headline"].read_text())  # what `dvc metrics show` lists: a short table
    assert headline == {
        "test": {k: m["model"][k] for k in ("accuracy", "macro_f1", "ece")},
        "test_baseline": {k: m["baseline"][k] for k in ("accuracy", "macro_f1", "ece")},
        "test_delta": {k: m["delta"][k] for k in ("accuracy", "macro_f1")},
        "test_rows": 15,
    }

    pred = pd.read_csv(out["predictions"], dtype={"id": str})
    assert list(pred.columns[:7]) == [
        "id",
        "label",
        "pred",
        "score",
        "correct",
        "baseline_pred",
        "baseline_correct",
    ]
    assert list(pred.columns[7:]) == ["prob_business", "prob_sport", "prob_tech"]
    assert len(pred) == 15 and pred["id"].is_unique
    assert (pred["correct"] == (pred["label"] == pred["pred"]).astype(int)).all()
    assert pred["correct"].mean() == pytest.approx(m["model"]["accuracy"])
    assert pred["baseline_correct"].mean() == pytest.approx(m["baseline"]["accuracy"])
    probs = pred[["prob_business", "prob_sport", "prob_tech"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(probs.max(axis=1), pred["score"], atol=1e-6)

    conf = json.loads(out["confusion"].read_text())
    assert len(conf) == 15 and set(conf[0]) == {"actual", "predicted"}
    assert sum(c["actual"] == c["predicted"] for c in conf) == pred["correct"].sum()
    assert out["confusion-png"].read_bytes()[:4] == b"\x89PNG"

    errors = pd.read_csv(out["errors"])
    assert len(errors) == min(3, int((pred["correct"] == 0).sum()))
    assert (errors["label"] != errors["pred"]).all()
    assert list(errors["score"]) == sorted(errors["score"], reverse=True)
    assert errors["text"].str.len().max() <= 34  # 30 characters + " ..."


def test_model_trained_for_other_labels_is_a_clear_error(setup: dict[str, Path], tmp_path: Path) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"0": "business", "1": "politics", "2": "tech"}))
    with pytest.raises(
        EvaluateError, match=r"trained for labels \['business', 'sport', 'tech'\].*dvc repro finetune"
    ):
        evaluate.main([*argv({**setup, "labels": labels}, outputs(tmp_path))])


def test_a_multi_label_model_on_single_label_splits_is_a_clear_error(
    setup: dict[str, Path], tmp_path: Path
) -> None:
    """A head for label sets scores each label by a sigmoid: the arg-max of those is no single-label answer."""
    model = tmp_path / "model"
    shutil.copytree(setup["model"], model)
    config = json.loads((model / "config.json").read_text())
    config["problem_type"] = "multi_label_classification"
    (model / "config.json").write_text(json.dumps(config))
    write_folder_manifest(model)
    out = outputs(tmp_path)
    with pytest.raises(EvaluateError, match="multi-label head but the splits hold one class per text"):
        evaluate.main([*argv({**setup, "model": model}, out)])
    assert not out["metrics"].exists()


def test_a_windowed_text_is_scored_by_the_mean_of_its_windows(
    setup: dict[str, Path], tiny_bert: Path, corpus: list[dict]
) -> None:
    """Hand check against the model run window by window: each test text is the mean of its windows."""
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForSequenceClassification

    splits, _ = build_splits(tiny_bert, corpus, setup["tmp"] / "windowed", max_length=10, windows=3)
    test = load_from_disk(str(splits))["test"]
    assert all(n == 3 for n in test["n_windows"])
    probs, speed, _ = predict_proba(setup["model"], test, batch_size=5)
    model = AutoModelForSequenceClassification.from_pretrained(setup["model"], trust_remote_code=True).eval()
    with torch.inference_mode():
        for row, windows in enumerate(test["windows"][:4]):
            each = [torch.softmax(model(input_ids=torch.tensor([w])).logits, -1)[0].numpy() for w in windows]
            np.testing.assert_allclose(probs[row], np.mean(each, axis=0), atol=1e-5)
    assert probs.shape == (len(test), 3) and speed > 0


# --------------------------------------------------------------------------- integrity before code runs


def _tampered_copy(model: Path, dest: Path, how: str, marker: Path) -> Path:
    """A copy of the model folder changed as an attacker would; any code it adds writes `marker`."""
    shutil.copytree(model, dest)
    evil = f"from pathlib import Path\nPath({str(marker)!r}).write_text('the folder code ran')\n"
    if how == "weights":
        data = bytearray((dest / "model.safetensors").read_bytes())
        data[-100] ^= 1
        (dest / "model.safetensors").write_bytes(bytes(data))
    elif how == "extra_py":
        (dest / "evil.py").write_text(evil)
    elif how == "auto_map":
        (dest / "evil.py").write_text(evil + "from meanpool import *  # noqa\n")
        config = json.loads((dest / "config.json").read_text())
        config["auto_map"] = {
            "AutoConfig": "evil.MeanPoolConfig",
            "AutoModelForSequenceClassification": "evil.MeanPoolForSequenceClassification",
        }
        (dest / "config.json").write_text(json.dumps(config))
    elif how == "meanpool":
        (dest / "meanpool.py").write_text((dest / "meanpool.py").read_text() + evil)
    return dest


@pytest.mark.parametrize(
    ("how", "named"),
    [
        ("weights", "`model.safetensors`: expected sha256"),
        ("extra_py", "`evil.py`: not in the manifest (an added file)"),
        ("auto_map", "`config.json`: expected sha256"),
        ("meanpool", "`meanpool.py`: expected sha256"),
    ],
)
def test_a_changed_model_folder_is_refused_before_any_of_it_runs(
    setup: dict[str, Path], tmp_path: Path, how: str, named: str
) -> None:
    marker = tmp_path / "marker"
    model = _tampered_copy(setup["model"], tmp_path / "model", how, marker)
    out = outputs(tmp_path)
    with pytest.raises(ManifestError) as err:
        evaluate.main([*argv({**setup, "model": model}, out)])
    assert named in str(err.value) and "dvc repro finetune" in str(err.value)
    assert not marker.exists() and not out["metrics"].exists()


def test_the_folder_never_decides_to_run_its_own_code(setup: dict[str, Path], tmp_path: Path) -> None:
    """Even with a manifest rewritten to match (whoever can write the folder can), a trust flag inside the
    folder is ignored and the mean-pool head is ftpipe's own class: the folder's code never runs."""
    marker = tmp_path / "marker"
    model = _tampered_copy(setup["model"], tmp_path / "model", "meanpool", marker)
    (model / "evil.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    (model / "ftpipe_params.json").write_text(json.dumps({"base_model": {"trust_remote_code": True}}))
    config = json.loads((model / "config.json").read_text())
    config["auto_map"]["AutoModelForSequenceClassification"] = "evil.Evil"
    (model / "config.json").write_text(json.dumps(config))
    write_folder_manifest(model)
    out = outputs(tmp_path)
    evaluate.main([*argv({**setup, "model": model}, out)])
    assert out["metrics"].is_file() and not marker.exists()

    # a model type transformers knows, with `auto_map` at the folder's module: before, the folder's own
    # `trust_remote_code: true` made evaluate import it; now only tokenize.trust_remote_code could
    (model / "config.json").write_text(json.dumps({**config["encoder"], **config, "model_type": "bert"}))
    write_folder_manifest(model)
    with contextlib.suppress(Exception):  # whether a BERT loads from this folder does not matter here
        evaluate.main([*argv({**setup, "model": model}, outputs(tmp_path / "again"))])
    assert not marker.exists()
