"""Shared fixtures: a small labelled corpus and tiny models built in-process (no hub, no download).

The tiny models are random-initialised configs with a WordPiece tokenizer trained by `tokenizers` on the
fixture corpus, saved with `save_pretrained`, so tests exercise the same loading code as real checkpoints.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# the default run's reports as the stages wrote them (the workspace's reports/ are DVC outputs)
FIXTURE_REPORTS = REPO / "tests" / "fixtures" / "reports"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

TOPICS = {
    "business": "market shares profit bank economy company prices investors growth trade",
    "sport": "match goal team player coach league season win cup score",
    "tech": "software computer phone internet chip data users network digital device",
}
FILLER = "the a of and to in for on with by said year new".split()


def make_corpus(n_per_class: int = 30, seed: int = 0) -> list[dict[str, str]]:
    """Distinct, learnable rows: each text mixes its class's keywords with filler words."""
    rng = random.Random(seed)
    rows = []
    for label, words in TOPICS.items():
        vocab = words.split()
        for i in range(n_per_class):
            toks = [rng.choice(vocab) for _ in range(12)] + [rng.choice(FILLER) for _ in range(6)]
            rng.shuffle(toks)
            rows.append({"id": f"{label}-{i}", "text": f"Story {i}: " + " ".join(toks) + ".", "label": label})
    rng.shuffle(rows)
    return rows


def build_tokenizer(texts: list[str], out: Path, vocab_size: int = 200) -> Path:
    """A tiny WordPiece tokenizer over the words of `texts`, saved as a BERT fast tokenizer.

    The vocabulary is built here, sorted, rather than by `tokenizers`' trainer, whose tie-breaking
    differs from process to process: the same texts must give the same ids in every test run.
    `vocab_size` caps the number of whole words (most frequent first); characters cover the rest.
    """
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t)))
    words = sorted(w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:vocab_size])
    chars = sorted({c for w in counts for c in w})
    entries = dict.fromkeys([*special, *words, *chars, *(f"##{c}" for c in chars)])
    tok = Tokenizer(models.WordPiece(vocab={w: i for i, w in enumerate(entries)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    fast.save_pretrained(out)
    return out


# the tiny BERT every test model shares: 2 layers, 32 wide
TINY_BERT_SHAPE = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
    "pad_token_id": 0,
}


def build_tiny_bert(out: Path, texts: list[str] | None = None, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT with its own tokenizer, saved to `out`."""
    import torch
    from transformers import BertConfig, BertModel

    texts = texts or [r["text"] for r in make_corpus()]
    build_tokenizer(texts, out)
    torch.manual_seed(seed)
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(out))
    BertModel(BertConfig(vocab_size=vocab, **TINY_BERT_SHAPE)).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, str]]:
    return make_corpus()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, str]]) -> Path:
    """Path of a saved tiny BERT checkpoint (model + fast tokenizer)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), [r["text"] for r in corpus])


def run_cmd(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a command with the venv's bin first on PATH; on failure show its output."""
    full_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **(env or {}),
    }
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def _merge(base: dict, update: dict) -> dict:
    for k, v in update.items():
        base[k] = _merge(base.get(k) or {}, v) if isinstance(v, dict) and v else v
    return base


def make_pipeline_repo(root: Path, params: dict) -> Path:
    """A git + DVC repo holding a copy of `stages/`, the real dvc.yaml, and the shipped params.yaml with
    `params` ({section: {key: value}}, nested sections merged) applied; nothing run yet."""
    import shutil

    import yaml

    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    (root / "data" / "external").mkdir(parents=True, exist_ok=True)
    (root / "reports").mkdir(exist_ok=True)
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    # fp32 unless a test says otherwise: `precision: auto` picks bf16 on a CPU with native bf16, and a
    # test must mean the same on every machine (auto itself is tested in tests/stages/test_finetune.py)
    shipped = _merge(shipped, {"finetune": {"precision": "fp32"}})
    (root / "params.yaml").write_text(yaml.safe_dump(_merge(shipped, params), sort_keys=False))
    ignored = ("/data/raw/", "/data/interim/", "/data/processed/", "/models/", "/checkpoints/")
    (root / ".gitignore").write_text("".join(f"{x}\n" for x in ignored))
    for args in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        run_cmd(args, root)
    return root


def build_tiny_gpt2(out: Path, texts: list[str] | None = None, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random GPT-2 (decoder-only, byte-level BPE) whose tokenizer has NO pad token."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = texts or [r["text"] for r in make_corpus()]
    eos = "<|endoftext|>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=1000, special_tokens=[eos], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=eos,
        eos_token=eos,
        unk_token=eos,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(out)
    vocab = len(AutoTokenizer.from_pretrained(out))
    torch.manual_seed(seed)
    eos_id = fast.convert_tokens_to_ids(eos)
    cfg = GPT2Config(
        vocab_size=vocab,
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    GPT2LMHeadModel(cfg).save_pretrained(out)
    return out


def build_splits(
    model_dir: Path,
    rows: list[dict[str, str]],
    out: Path,
    max_length: int = 64,
    windows: int = 1,
    label_seed: int | None = None,
) -> tuple[Path, Path]:
    """The label stage's contract from fixture rows: `out/splits` (DatasetDict) and `out/labels.json`.

    Tokenized by the tokenize stage's own `encode_batch` (head policy, `windows` windows of `max_length`)
    with `model_dir`'s tokenizer, unpadded; per class, rows go 4:1:1 to train/validation/test, or, with
    `label_seed`, to the side the label stage's own stable split gives them under that `label.seed`.
    """
    import json

    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
    from transformers import AutoTokenizer

    from stages.config.tokenize import TokenizeParams
    from stages.tokenize import encode_batch

    tok = AutoTokenizer.from_pretrained(model_dir)
    p = TokenizeParams(model=str(model_dir), max_length=max_length, windows=windows)
    names = sorted({r["label"] for r in rows})
    seen: dict[str, int] = {}
    parts: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    if label_seed is not None:
        import pandas as pd

        from stages.config.label import LabelParams
        from stages.data.split import split_groups

        frame = pd.DataFrame([{**r, "group": r["id"]} for r in rows])
        for split, part in split_groups(frame, LabelParams(seed=label_seed)).items():
            parts[split] = [
                {k: r[k] for k in ("id", "text", "label")} for r in part.to_dict(orient="records")
            ]
    for r in rows if label_seed is None else []:
        i = seen[r["label"]] = seen.get(r["label"], -1) + 1
        split = "train" if i % 6 < 4 else ("validation" if i % 6 == 4 else "test")
        parts[split].append(r)
    want_types = "token_type_ids" in tok.model_input_names
    feats = {
        "id": Value("string"),
        "text": Value("string"),
        "label": ClassLabel(names=names),
        "group": Value("string"),
        "input_ids": List(Value("int32")),
        "attention_mask": List(Value("int8")),
        "n_tokens": Value("int64"),
        "n_unk": Value("int64"),
        "truncated": Value("bool"),
        "windows": List(List(Value("int32"))),
        "n_windows": Value("int64"),
    }
    if want_types:
        feats["token_type_ids"] = List(Value("int8"))
        feats["window_type_ids"] = List(List(Value("int8")))

    def table(part: list[dict]) -> Dataset:
        enc = encode_batch(tok, [r["text"] for r in part], p)
        data = {
            "id": [r["id"] for r in part],
            "text": [r["text"] for r in part],
            "label": [names.index(r["label"]) for r in part],
            "group": [r["id"] for r in part],
            **enc,
        }
        return Dataset.from_dict(data, features=Features(feats))

    out.mkdir(parents=True, exist_ok=True)
    DatasetDict({k: table(v) for k, v in parts.items()}).save_to_disk(str(out / "splits"))
    (out / "labels.json").write_text(json.dumps({str(i): n for i, n in enumerate(names)}))
    return out / "splits", out / "labels.json"


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, str]]) -> Path:
    """Path of a saved tiny GPT-2 checkpoint whose tokenizer has no pad token."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"), [r["text"] for r in corpus])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a real `mlflow server` on 127.0.0.1 (SQLite + artifacts in a temp folder), for the session."""
    from tests.registry_support import start_mlflow_server

    yield from start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    """URI of a fresh SQLite tracking store, `mlflow.db` in tmp_path (tests/factories.py registers in it)."""
    from tests.factories import new_store

    return new_store(tmp_path)


_MLFLOW_ENV_AT_START = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}


@pytest.fixture(autouse=True)
def _isolate_mlflow_tracking_uri() -> Iterator[None]:
    """`mlflow.set_tracking_uri`/`set_registry_uri` are process-global (and set MLFLOW_TRACKING_URI /
    MLFLOW_REGISTRY_URI): undo them after each test so one test's store never leaks into the next. The
    values go back to those of the session's start, not of this test's start: a module-scoped fixture
    that registered a model runs before this fixture and would otherwise leak into the next module."""
    before = _MLFLOW_ENV_AT_START
    yield
    if "mlflow" in sys.modules:
        import mlflow
        import mlflow.tracking._model_registry.utils as registry_utils

        mlflow.set_tracking_uri(None)
        registry_utils._registry_uri = None  # set_registry_uri(None) keeps the old value
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def no_dropout_bert(tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, str]]) -> Path:
    """The tiny BERT without dropout: runs on 1 or 2 processes see the same numbers (only sums reorder)."""
    out = build_tiny_bert(tmp_path_factory.mktemp("bert-no-dropout"), [r["text"] for r in corpus])
    config = json.loads((out / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def model_weights(run: Path) -> dict[str, Any]:
    """The tensors of `run/model/model.safetensors` (a finetune output)."""
    from safetensors.torch import load_file

    return load_file(str(run / "model" / "model.safetensors"))


def relative_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    """||a - b|| / ||a|| over all tensors of two state dicts with the same keys."""
    assert a.keys() == b.keys()
    num = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a)
    den = sum(float((a[k].double() ** 2).sum()) for k in a)
    return (num / den) ** 0.5
