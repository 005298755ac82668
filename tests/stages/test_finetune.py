"""finetune on tiny in-process models: outputs, head-only, resume, NaN guard, determinism, decoder-only, DDP."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.config.params import ParamsError, validate_section
from stages.model.recipe import Paths, run_finetune
from stages.model.splits import load_splits
from stages.model.trainer import NonFiniteLossError, format_duration
from stages.model.training import balanced_class_weights
from stages.serving.manifest import MANIFEST_FILE, verify_folder
from tests.conftest import REPO, build_splits, run_cmd

LOG = logging.getLogger("ftpipe.finetune")
# tiny models learn the keyword corpus in a few epochs at a high learning rate
# fp32 fixed: `auto` would pick bf16 on a CPU with native bf16, and these tests must mean the same everywhere
TINY = {
    "epochs": 4,
    "learning_rate": 5e-3,
    "batch_size": 4,
    "warmup": 0.0,
    "patience": 2,
    "precision": "fp32",
}


@pytest.fixture(scope="module")
def bert_data(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, corpus: list[dict]
) -> tuple[Path, Path]:
    return build_splits(tiny_bert, corpus, tmp_path_factory.mktemp("bert-data"))


def make_paths(tmp: Path, data: tuple[Path, Path]) -> Paths:
    splits, labels = data
    return Paths(
        splits,
        labels,
        tmp / "model",
        tmp / "ckpt",
        tmp / "finetune.json",
        tmp / "history.json",
        tmp / "curves.png",
    )


def train(
    tmp: Path, model: Path, data: tuple[Path, Path], callbacks: list[Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    p = FinetuneParams(**{**TINY, **overrides})
    report = run_finetune(p, BaseModelRef(model=str(model)), make_paths(tmp, data), LOG, callbacks)
    assert report is not None
    return report


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, bert_data: tuple[Path, Path]
) -> Path:
    """One full-parameter run with the TINY params; tests compare against its outputs."""
    tmp = tmp_path_factory.mktemp("reference")
    handler = logging.FileHandler(tmp / "train.log")
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    try:
        train(tmp, tiny_bert, bert_data)
    finally:
        LOG.removeHandler(handler)
        handler.close()
    return tmp


def encoder_state(path: Path) -> dict[str, Any]:
    """The body's weights: of a base checkpoint, or of a fine-tuned folder (whatever its head)."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    if (path / "ftpipe_params.json").is_file():
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
        return model.base_model.state_dict()
    return AutoModel.from_pretrained(path).state_dict()


def same_body(base: dict[str, Any], tuned: dict[str, Any]) -> list[str]:
    """Keys whose tensors differ; the mean-pooling head drops BERT's unused [CLS] pooler from the body."""
    assert tuned.keys() <= base.keys() and len(tuned) >= len(base) - 2
    return [k for k, v in tuned.items() if not v.equal(base[k])]


def test_full_finetune_writes_model_history_and_report(reference: Path, tiny_bert: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = reference / "model"
    assert (model_dir / "model.safetensors").is_file()
    # the mean-pooling head travels as the folder's own code: it loads without the ftpipe repository
    assert (model_dir / "meanpool.py").is_file()
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
    assert type(model).__name__ == "MeanPoolForSequenceClassification"
    assert model.config.id2label == {0: "business", 1: "sport", 2: "tech"}
    assert model.config.label2id == {"business": 0, "sport": 1, "tech": 2}
    # nothing in the folder depends on where or how the run happened (same data + params, same bytes)
    assert str(tiny_bert) not in (model_dir / "config.json").read_text()
    assert "local_files_only" not in json.loads((model_dir / "tokenizer_config.json").read_text())
    saved_tok = json.loads((model_dir / "tokenizer.json").read_text())
    assert saved_tok["padding"] is None and saved_tok["truncation"] is None
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert len(tok("market shares")["input_ids"]) < 10  # not padded to a fixed length
    resolved = json.loads((model_dir / "ftpipe_params.json").read_text())
    assert resolved["finetune"]["learning_rate"] == TINY["learning_rate"]
    assert resolved["base_model"]["model"] == resolved["base_model"]["source"] == str(tiny_bert)
    assert (resolved["device"], resolved["precision"], resolved["num_processes"]) == ("cpu", "fp32", 1)
    # the manifest evaluate checks: every other file of the folder, in `sha256sum -c` form
    lines = (model_dir / MANIFEST_FILE).read_text().splitlines()
    assert sorted(line.split("  ", 1)[1] for line in lines) == sorted(
        f.name for f in model_dir.iterdir() if f.name != MANIFEST_FILE
    )
    verify_folder(model_dir, fix="")

    report = json.loads((reference / "finetune.json").read_text())
    assert (report["device"], report["precision"], report["num_processes"]) == ("cpu", "fp32", 1)
    assert report["trainable_params"] == report["total_params"] > 0
    assert report["train_samples_per_s"] > 0 and report["wall_time_s"] > 0
    assert report["best_validation"]["macro_f1"] >= 0.6  # it learned something
    history = json.loads((reference / "history.json").read_text())
    assert [r["epoch"] for r in history] == list(range(1, len(history) + 1))
    for row in history:
        assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1"} <= row.keys()
    best = next(r for r in history if r["epoch"] == report["best_epoch"])
    assert (
        best["val_macro_f1"]
        == report["best_validation"]["macro_f1"]
        == max(r["val_macro_f1"] for r in history)
    )
    assert (reference / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (reference / "ckpt").exists()  # cleared after success
    # full-parameter: the encoder moved away from the base checkpoint
    assert same_body(encoder_state(tiny_bert), encoder_state(model_dir))


def test_progress_lines_give_the_time_left_in_training_and_in_validation(reference: Path) -> None:
    lines = (reference / "train.log").read_text().splitlines()
    steps = [ln for ln in lines if ln.startswith("step ")]
    assert steps and all(re.search(r"samples/s, ETA (\d+s|\d+m\d\ds)$", ln) for ln in steps), lines
    # validation is no longer silent: a line per quarter of each pass (here one batch: one line per epoch)
    val = [ln for ln in lines if ln.startswith("validation after epoch")]
    epochs = json.loads((reference / "finetune.json").read_text())["epochs_run"]
    assert len(val) >= epochs, lines
    assert re.fullmatch(r"validation after epoch 1: batch 1/\d+, \d+s left, ETA \d+s", val[0]), val[0]
    assert [format_duration(s) for s in (0.4, 45, 185, 3725)] == ["0s", "45s", "3m05s", "1h02m"]


def test_each_epoch_ends_with_one_line_the_quiet_output_shows(reference: Path) -> None:
    """Issue #33, item 5: without a terminal, `ftpipe run` showed nothing for the minutes of finetune."""
    from flows.runner import SHOWN_WHEN_QUIET

    lines = (reference / "train.log").read_text().splitlines()
    ends = [ln for ln in lines if ln.startswith("epoch ") and " done: " in ln]
    epochs = json.loads((reference / "finetune.json").read_text())["epochs_run"]
    assert len(ends) == epochs, lines
    assert re.fullmatch(
        r"epoch 1/\d+ done: train loss \d+\.\d{4}, validation macro_f1 \d\.\d{4}, \d+s", ends[0]
    ), ends[0]
    assert SHOWN_WHEN_QUIET.match(f"12:00:01 finetune INFO {ends[0]}")
    assert not SHOWN_WHEN_QUIET.match("12:00:01 finetune INFO step 3/9 (epoch 0.33): 9.1 samples/s, ETA 5s")


def test_windowed_texts_train_on_a_fresh_window_each_epoch(
    tmp_path: Path, tiny_bert: Path, corpus: list[dict]
) -> None:
    """Texts cut into 3 windows: the training set is told each epoch (so it redraws its windows) and
    validation scores one prediction per text from all its windows."""
    from transformers import TrainerCallback

    class SeenEpochs(TrainerCallback):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.seen.append(kw["train_dataloader"].dataset.epoch)

    data = build_splits(tiny_bert, corpus, tmp_path / "data", max_length=10, windows=3)
    seen = SeenEpochs()
    report = train(tmp_path, tiny_bert, data, callbacks=[seen], patience=0)
    assert seen.seen == [0, 1, 2, 3]
    assert report["validation_windows"] == 3 * report["validation_rows"]
    assert report["windows_per_train_text"] == 3.0
    assert report["best_validation"]["macro_f1"] >= 0.45  # chance is 0.33; 8-token windows carry less


def test_same_params_and_data_give_the_same_validation_metrics(
    tmp_path: Path, reference: Path, tiny_bert: Path, bert_data: tuple[Path, Path]
) -> None:
    train(tmp_path, tiny_bert, bert_data)
    first = json.loads((reference / "history.json").read_text())
    second = json.loads((tmp_path / "history.json").read_text())
    assert second == first


def test_head_only_leaves_the_encoder_bit_identical(
    tmp_path: Path, tiny_bert: Path, bert_data: tuple[Path, Path]
) -> None:
    report = train(tmp_path, tiny_bert, bert_data, freeze="encoder", epochs=2)
    assert report["trainable_params"] == 32 * 3 + 3  # the classifier only: hidden 32 x 3 classes + bias
    assert report["total_params"] > report["trainable_params"]
    assert same_body(encoder_state(tiny_bert), encoder_state(tmp_path / "model")) == []


def test_balanced_class_weights_train_and_are_recorded(
    tmp_path: Path, reference: Path, tiny_bert: Path, bert_data: tuple[Path, Path]
) -> None:
    report = train(tmp_path, tiny_bert, bert_data, class_weights="balanced", epochs=2, max_train_samples=30)
    names = ["business", "sport", "tech"]
    train_rows, _ = load_splits(bert_data[0], names, 30, FinetuneParams().seed)
    expected = balanced_class_weights(np.asarray(train_rows["label"]), len(names))
    assert list(report["class_weights"]) == names
    assert list(report["class_weights"].values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert len(set(report["class_weights"].values())) > 1  # the 30-row draw is skewed: the weights differ
    resolved = json.loads((tmp_path / "model" / "ftpipe_params.json").read_text())
    assert resolved["finetune"]["class_weights"] == "balanced"
    assert resolved["class_weights"] == report["class_weights"]
    history = json.loads((tmp_path / "history.json").read_text())
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in history)
    # unweighted (the default), the records keep their bytes of before the key existed: no class_weights
    plain = json.loads((reference / "model" / "ftpipe_params.json").read_text())
    assert "class_weights" not in plain and "class_weights" not in plain["finetune"]
    assert "class_weights" not in json.loads((reference / "finetune.json").read_text())


class Killed(Exception):
    """Stands in for the process being killed right after a checkpoint was written."""


def test_interrupted_run_resumes_from_its_checkpoint(
    tmp_path: Path,
    reference: Path,
    tiny_bert: Path,
    bert_data: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from transformers import TrainerCallback

    class KillAfterSecondSave(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.epoch >= 2:
                raise Killed

    with pytest.raises(Killed):
        train(tmp_path, tiny_bert, bert_data, callbacks=[KillAfterSecondSave()])
    assert not (tmp_path / "model").exists()  # no half-written model
    saved = sorted(p.name for p in (tmp_path / "ckpt").glob("checkpoint-*"))
    assert saved == ["checkpoint-15", "checkpoint-30"]  # 60 train rows, batch 4: 15 steps an epoch

    with caplog.at_level(logging.INFO, logger="ftpipe.finetune"):
        report = train(tmp_path, tiny_bert, bert_data)
    assert f"resuming from {tmp_path / 'ckpt' / 'checkpoint-30'}" in caplog.text
    assert report["resumed_from"].endswith("checkpoint-30")
    history = json.loads((tmp_path / "history.json").read_text())
    assert history == json.loads((reference / "history.json").read_text())  # as if never interrupted
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "ckpt").exists()


def test_nan_loss_stops_with_the_step(tmp_path: Path, tiny_bert: Path, bert_data: tuple[Path, Path]) -> None:
    # a learning rate this large makes the weights overflow float32 within a few updates
    with pytest.raises(
        NonFiniteLossError, match=r"loss became (nan|inf) at step \d+ .*finetune.learning_rate"
    ):
        train(tmp_path, tiny_bert, bert_data, learning_rate=1e30, max_grad_norm=0.0)
    assert not (tmp_path / "model").exists()


def test_decoder_only_without_pad_token(tmp_path: Path, tiny_gpt2: Path, corpus: list[dict]) -> None:
    """A GPT-2 without a pad token is fine-tuned (pad = eos) and evaluated end to end."""
    from transformers import AutoConfig, AutoTokenizer

    from stages import evaluate

    assert AutoTokenizer.from_pretrained(tiny_gpt2).pad_token is None
    data = build_splits(tiny_gpt2, corpus, tmp_path / "data")
    # the architecture's own head reads the last non-pad token, so it is the one that needs the pad id
    report = train(tmp_path, tiny_gpt2, data, epochs=3, pooling="native")
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    cfg = AutoConfig.from_pretrained(tmp_path / "model")
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert cfg.pad_token_id == tok.eos_token_id
    assert cfg.architectures == ["GPT2ForSequenceClassification"]
    assert report["best_validation"]["accuracy"] > 0.5

    params = tmp_path / "params.yaml"
    params.write_text("evaluate: {}\ntokenize: {}\n")  # evaluate reads tokenize.trust_remote_code
    r = tmp_path / "reports"
    evaluate.main(
        [
            "--params",
            str(params),
            "--splits",
            str(data[0]),
            "--labels",
            str(data[1]),
            "--model",
            str(tmp_path / "model"),
            "--metrics",
            str(r / "metrics.json"),
            "--headline",
            str(r / "headline.json"),
            "--predictions",
            str(r / "predictions.csv"),
            "--confusion",
            str(r / "confusion.json"),
            "--confusion-png",
            str(r / "confusion.png"),
            "--errors",
            str(r / "errors.csv"),
        ]
    )
    metrics = json.loads((r / "metrics.json").read_text())
    assert metrics["test_rows"] == 15 and metrics["model"]["accuracy"] > 0.5


@pytest.mark.slow  # 2 gloo processes (the marker's definition); `make test-slow`
def test_two_processes_on_gloo(tmp_path: Path, tiny_bert: Path, bert_data: tuple[Path, Path]) -> None:
    """`num_processes: 2` relaunches the stage under torchrun: DDP with the gloo backend on the CPU."""
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "tokenize": {"model": str(tiny_bert)},
                "finetune": {**TINY, "epochs": 2, "batch_size": 4, "num_processes": 2},
            }
        )
    )
    p = make_paths(tmp_path, bert_data)
    start = time.time()
    proc = run_cmd(
        [
            "python",
            "-m",
            "stages.finetune",
            "--params",
            str(params),
            "--splits",
            str(p.splits),
            "--labels",
            str(p.labels),
            "--out",
            str(p.out),
            "--checkpoints",
            str(p.checkpoints),
            "--report",
            str(p.report),
            "--history",
            str(p.history),
            "--plot",
            str(p.plot),
        ],
        cwd=REPO,
        timeout=300,
    )
    report = json.loads(p.report.read_text())
    assert report["num_processes"] == 2, proc.stderr[-2000:]
    assert "launching 2 processes" in proc.stderr
    assert (p.out / "model.safetensors").is_file()
    assert len(json.loads(p.history.read_text())) == 2
    assert not p.checkpoints.exists()
    assert time.time() - start < 120


def test_params_are_validated() -> None:
    with pytest.raises(ParamsError, match=r"`finetune.warmup` = 2.5"):
        validate_section("finetune", {"warmup": 2.5}, FinetuneParams)
    with pytest.raises(ParamsError, match=r"`finetune.freeze` = 'all'"):
        validate_section("finetune", {"freeze": "all"}, FinetuneParams)
    with pytest.raises(ParamsError, match=r"`finetune.pooling` = 'cls'"):
        validate_section("finetune", {"pooling": "cls"}, FinetuneParams)
    with pytest.raises(ParamsError, match=r"`finetune.class_weights` = 'inverse'") as exc:
        validate_section("finetune", {"class_weights": "inverse"}, FinetuneParams)
    assert "\n" not in str(exc.value)
    assert validate_section("finetune", {"warmup": 50}, FinetuneParams).warmup == 50
