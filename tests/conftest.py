"""Shared fixtures: a small labelled corpus and tiny models built in-process (no hub, no download).

The tiny models are random-initialised configs with a WordPiece tokenizer trained by `tokenizers` on the
fixture corpus, saved with `save_pretrained`, so tests exercise the same loading code as real checkpoints.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

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
    """Train a tiny WordPiece tokenizer and save it as a BERT fast tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
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


def build_tiny_bert(out: Path, texts: list[str] | None = None, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT with its own tokenizer, saved to `out`."""
    import torch
    from transformers import BertConfig, BertModel

    texts = texts or [r["text"] for r in make_corpus()]
    build_tokenizer(texts, out)
    torch.manual_seed(seed)
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(out))
    cfg = BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    BertModel(cfg).save_pretrained(out)
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
