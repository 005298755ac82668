"""onnx_compare: ONNX Runtime against torch for the served model's inference, fp32 and int8, same windows.

#15 asked for int8 dynamic quantization "or ONNX Runtime, whichever measures faster here". This puts the
four side by side on BBC's test articles, through the one inference routine
(`textclf.window_probabilities`, longest first, token-budget batches): torch fp32 (the served default),
torch int8 (`quantize: int8`), and the same model exported to ONNX (`torch.onnx.export(dynamo=True)`)
run by ONNX Runtime in fp32 and after `onnxruntime.quantization.quantize_dynamic` (int8 weights). Each
prints texts/s, its speed-up over torch fp32, label agreement and largest probability change.

ONNX Runtime is not a dependency of ftpipe (it measured no faster here, see bench/README.md), so this
needs it installed into the venv first; without it the script says so and exits 0:

    .venv/bin/pip install onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2
    .venv/bin/python -m bench.onnx_compare [--limit N]

Export with care: the legacy TorchScript exporter (`dynamo=False`, deprecated) traced the SDPA attention
path with one batch's mask shape baked in, and its probabilities were off by up to 0.2 on other batches
while every label still agreed; an example batch without padding exports a graph that ignores the mask
(a fifth of the labels agreed). This uses the torch.export-based exporter, eager attention and a padded
example, whose probabilities match torch's to 2e-7.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from bench.inference import MODEL, SPLITS, _tokenize_config

NEEDS = ("onnxruntime", "onnx", "onnxscript")
INSTALL = ".venv/bin/pip install onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2"
BATCH_TOKENS = 32 * 128  # the served model's default budget (register.batch_size x max_length)


def missing_packages() -> list[str]:
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


class OrtClassifier:
    """An ONNX Runtime session that answers like the torch model does to `window_probabilities`."""

    def __init__(self, path: Path, config: Any, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.config = config

    def __call__(self, input_ids: Any, attention_mask: Any, **_: Any) -> Any:
        import torch

        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(["logits"], feeds)[0]))


def export(model_dir: Path, dest: Path) -> tuple[Path, Path, float]:
    """The classifier at `model_dir` as ONNX (fp32) and dynamically int8-quantized; and the export seconds."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from stages.serving.meanpool import load_classifier

    model = load_classifier(str(model_dir)).eval()
    for module in model.modules():  # eager attention: see the module docstring
        if getattr(module, "config", None) is not None and hasattr(module.config, "_attn_implementation"):
            module.config._attn_implementation = "eager"

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    # an example with padding: from an all-ones mask transformers drops the mask, and the export with it
    example = torch.ones(2, 16, dtype=torch.long)
    mask = example.clone()
    mask[1, 8:] = 0
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
    fp32, int8 = dest / "model.onnx", dest / "model.int8.onnx"
    t0 = time.perf_counter()
    torch.onnx.export(
        Logits(),
        (example, mask),
        str(fp32),
        dynamo=True,
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
    )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return fp32, int8, time.perf_counter() - t0


def compare(limit: int | None = None) -> dict[str, Any]:
    import torch
    from datasets import load_from_disk
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from stages.serving.meanpool import load_classifier
    from stages.serving.textclf import encode, quantize_int8, window_probabilities

    test = load_from_disk(str(SPLITS))["test"]
    texts = list(test["text"])[:limit] if limit else list(test["text"])
    cfg = _tokenize_config()
    tok = cast(PreTrainedTokenizerFast, AutoTokenizer.from_pretrained(MODEL))  # MODEL's is a fast one
    per_text = encode(tok, texts, cfg["max_length"], cfg["truncation"], cfg["head_fraction"], cfg["windows"])
    windows = [w for row in per_text for w in row]
    owner = [i for i, row in enumerate(per_text) for _ in row]

    def pad(batch: list[dict[str, list[int]]]) -> Any:
        return tok.pad(batch, return_tensors="pt")

    out: dict[str, Any] = {"texts": len(texts), "windows": len(windows), "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path, int8_path, seconds = export(MODEL, Path(tmp))
        out["export_s"] = round(seconds, 1)
        torch_fp32 = load_classifier(str(MODEL)).eval()
        models = {
            "torch_fp32": torch_fp32,
            "torch_int8": quantize_int8(load_classifier(str(MODEL)).eval()),
            "ort_fp32": OrtClassifier(fp32_path, torch_fp32.config, torch.get_num_threads()),
            "ort_int8": OrtClassifier(int8_path, torch_fp32.config, torch.get_num_threads()),
        }
        probs = {}
        for name, model in models.items():
            window_probabilities(model, pad, windows[:16], [0] * 16, 1, BATCH_TOKENS)  # warm-up
            t0 = time.perf_counter()
            probs[name] = window_probabilities(model, pad, windows, owner, len(texts), BATCH_TOKENS)
            out[f"{name}_texts_per_s"] = round(len(texts) / (time.perf_counter() - t0), 2)
    ref = probs["torch_fp32"]
    for name, p in probs.items():
        out[f"{name}_speedup"] = round(out[f"{name}_texts_per_s"] / out["torch_fp32_texts_per_s"], 2)
        out[f"{name}_agreement"] = round(float(np.mean(p.argmax(1) == ref.argmax(1))), 4)
        out[f"{name}_max_prob_change"] = float(np.abs(p - ref).max())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N test texts")
    args = ap.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(
            f"onnx_compare: {', '.join(missing)} not installed, nothing measured; to compare, run: {INSTALL}"
        )
        return 0
    if not (MODEL / "config.json").is_file() or not (SPLITS / "dataset_dict.json").is_file():
        print("onnx_compare: models/model or data/processed/splits is missing: run `make run` first")
        return 1
    print(json.dumps(compare(args.limit), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
