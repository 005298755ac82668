"""The served model: a lean MLflow pyfunc around a Hugging Face sequence-classification folder.

    import mlflow, pandas as pd
    model = mlflow.pyfunc.load_model("models:/ftpipe-bbc-news@champion")
    model.predict(pd.DataFrame({"text": ["Shares rose after the bank's profit beat forecasts."]}))
    #       label     score
    # 0  business  0.981...

The register stage logs this file as MLflow "models from code": MLflow copies it into the model and runs
it at load, so a registered model needs mlflow, torch, transformers and pandas, never the ftpipe
repository. The model folder (weights, config with id2label, tokenizer) travels as the artifact
`hf_model`; `model_config` carries the windowing and truncation policy the pipeline tokenized with
(`max_length`, `windows`, `truncation` = head | tail | head+tail, `head_fraction`), so a served prediction
sees the same tokens as the evaluated one and, like it, averages the probabilities of a text's windows
(`window_probabilities`, the one inference routine, which evaluate imports too). Two more keys trade
exactness for speed: `quantize` (`none` | `int8`: dynamic int8 Linear layers, CPU) and `precision`
(`fp32` | `auto`: bf16 autocast where the CPU or GPU has native bf16); both can be set at load,
`mlflow.pyfunc.load_model(uri, model_config={"quantize": "int8"})`. `encode` (`WindowEncoder`) is
also the tokenize stage's encoder: stages/tokenize.py imports it from here (never the other way round:
this file must stand alone), so a served text is cut into the windows its training data was. A missing,
empty, blank or non-string text is refused with an `MlflowException` (INVALID_PARAMETER_VALUE, so
`mlflow models serve` answers 400) naming the row.

Integrity: the register stage ships ftpipe's `manifest.py` and `meanpool.py` with the model (MLflow
`code_paths`, under `<model>/code/`) and puts the sha256 of every file of the model folder and of that
code in `model_config["manifest"]`. `load_context` checks both before it reads any of them and refuses a
changed, added or missing file; the mean-pool head is then built from the registered `meanpool.py`, never
from the folder's own copy or `auto_map`, and no folder code is trusted.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel, PythonModelContext  # the context: read in predict's type hints

if TYPE_CHECKING:  # torch and transformers are imported where a model is loaded or run
    import torch
    from tokenizers import Encoding, Tokenizer
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

HF_ARTIFACT = "hf_model"
MULTI_LABEL = "multi_label_classification"  # a model config's problem_type for label sets (label.task)
LABEL_SET_SEPARATOR = (
    "|"  # a served label set as one string (stages/core/label_sets.py; this module imports nothing of stages)
)
DEFAULT_THRESHOLD = 0.5  # a label's decision threshold where config.json's `ftpipe_thresholds` names none
# ftpipe modules registered with the model (MLflow `code_paths`, under <model>/code/) and loaded by path
REGISTERED_CODE = ("manifest.py", "meanpool.py")
DEFAULT_CONFIG = {
    "max_length": 128,
    "truncation": "head",
    "head_fraction": 0.25,
    "windows": 1,
    "batch_size": 32,
    "quantize": "none",
    "precision": "fp32",
}
QUANTIZE = ("none", "int8")  # int8: torch dynamic quantization of every nn.Linear (CPU only)
PRECISION = ("fp32", "auto")  # auto: bf16 autocast where the CPU computes bf16 natively, else fp32
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # stages/finetune.py BF16_CPU_FLAGS


CHARS_PER_TOKEN = 16  # generous: English runs at 4-6 characters a token, Chinese at about 1


def encode(
    tok: PreTrainedTokenizerFast,
    texts: list[str],
    max_length: int,
    truncation: str,
    head_fraction: float,
    windows: int = 1,
) -> list[list[dict[str, list[int]]]]:
    """Per text, its token windows (at most `windows` of `max_length` tokens, special tokens included).

    When a text is longer than the windows hold, the truncation policy picks what is kept; the kept
    tokens are cut into windows of near-equal size. The work per text is bounded by the budget: a text
    longer than 2 x `CHARS_PER_TOKEN` x budget characters is tokenized only at its ends (the same
    tokens as the whole text's, less the word each cut splits), so a 10 MB text costs what 32 KB does.
    """
    return WindowEncoder(tok, max_length, truncation, head_fraction, windows).encode(texts)


class TextCounts(NamedTuple):
    """How the model reads one text: what the tokenize stage records per row and `ftpipe serve` logs."""

    tokens: int  # the whole text's tokens, special tokens included (before truncation)
    unknown: int  # of them, the tokenizer's unknown token (0 where it has none)
    windows: int  # the windows the model reads it as
    truncated: bool  # longer than the windows hold


class WindowEncoder:
    """How a tokenizer turns texts into windows under one truncation policy: ftpipe's one encoder.

    The served model (`encode`), the tokenize stage (stages/tokenize.py) and `ftpipe serve`'s request
    log (`counts`) all use it, so a served text is read, and counted, as the training data was. Its
    steps are methods so that the stage can count from the same tokenization: `whole_ids`, then per
    text `read` (`kept_ids`, the truncation policy, then `windows`, and the text's `TextCounts`).
    """

    def __init__(
        self,
        tok: PreTrainedTokenizerFast,
        max_length: int,
        truncation: str,
        head_fraction: float,
        windows: int,
    ) -> None:
        self.backend = copy.deepcopy(tok.backend_tokenizer)  # the saved one may carry padding/truncation
        self.backend.no_truncation()
        self.backend.no_padding()
        self.specials = int(tok.num_special_tokens_to_add(pair=False))
        self.window_budget = max_length - self.specials
        if self.window_budget < 1:
            raise ValueError(
                f"max_length = {max_length} leaves no room beside the tokenizer's {self.specials} special "
                "tokens; raise max_length."
            )
        self.budget = self.window_budget * windows
        if truncation == "head":
            self.head_n, self.tail_n = self.budget, 0
        elif truncation == "tail":
            self.head_n, self.tail_n = 0, self.budget
        else:  # head+tail
            self.head_n = max(1, int(self.budget * head_fraction))
            self.tail_n = self.budget - self.head_n
        self.span = CHARS_PER_TOKEN * self.budget  # a text over 2 x span characters is read at its ends
        self.pre, self.pre_types, self.seq_type, self.post, self.post_types = _special_template(
            self.backend, self.specials
        )
        self.want_types = "token_type_ids" in tok.model_input_names

    @classmethod
    def from_config(cls, tok: PreTrainedTokenizerFast, config: Mapping[str, Any]) -> WindowEncoder:
        """The encoder a served model's `model_config` describes (max_length, truncation, head_fraction,
        windows)."""
        return cls(
            tok,
            int(config["max_length"]),
            str(config["truncation"]),
            float(config["head_fraction"]),
            int(config["windows"]),
        )

    def encode(self, texts: list[str]) -> list[list[dict[str, list[int]]]]:
        """Per text, its windows (what the module's `encode` gives, with this encoder's settings)."""
        return [
            self.windows(self.kept_ids(t, ids)) for t, ids in zip(texts, self.whole_ids(texts), strict=True)
        ]

    def whole_ids(self, texts: list[str]) -> list[list[int] | None]:
        """Each text's ids, no special tokens; None for a text too long to tokenize whole."""
        short = [t if len(t) <= 2 * self.span else "" for t in texts]
        encs = self.backend.encode_batch(short, add_special_tokens=False)
        return [None if len(t) > 2 * self.span else list(e.ids) for t, e in zip(texts, encs, strict=True)]

    def kept_ids(self, text: str, ids: list[int] | None) -> list[int]:
        """The ids of `text` that the policy keeps, from its whole `ids` or, when None, from its ends.

        A long text's ends are its first and last `span` characters, each less the word the cut may have
        split: the ids of the whole text whenever each piece still holds the tokens it must give (always,
        unless the text averages more than `span / budget` characters a token there). Without it a 10 MB
        text cost seconds and gigabytes to tokenize whole, and more to merge its ends (quadratic).
        """
        if ids is None:
            ids = []
            if self.head_n:
                head = self.backend.encode(text[: self.span], add_special_tokens=False)
                ids = _whole_words(head, "last")[: self.head_n]
            if self.tail_n:
                tail = self.backend.encode(text[-self.span :], add_special_tokens=False)
                kept = _whole_words(tail, "first")
                ids += kept[max(0, len(kept) - self.tail_n) :]
        if len(ids) <= self.head_n + self.tail_n:
            return list(ids)
        return ids[: self.head_n] + ids[len(ids) - self.tail_n :]

    def count_ids(self, text: str, unk: int | None) -> tuple[int, int]:
        """Tokens and unknown tokens of `text` (no special tokens), tokenizing at most `span` characters
        at a time.

        Each piece but the last counts the tokens before its last word (which the cut may have split), and
        the next piece starts at that word: the counts of the whole text, with memory bounded by the budget
        (a 10 MB text tokenized whole held 1.5 GB). A piece that is one word (no ordinary text has a word
        of `span` characters) is counted as it is, so the count of such a text is approximate.
        """
        n = n_unk = pos = 0
        span = self.span
        while True:
            enc = self.backend.encode(text[pos : pos + span], add_special_tokens=False)
            ids, words, step = enc.ids, enc.word_ids, span
            if pos + span < len(text) and ids and words[0] != words[-1]:
                last = len(ids) - 1
                while words[last] == words[-1]:
                    last -= 1
                if enc.offsets[last + 1][0] > 0:  # where the last word starts: the next piece starts there
                    ids, step = ids[: last + 1], enc.offsets[last + 1][0]
            n, n_unk = n + len(ids), n_unk + (0 if unk is None else ids.count(unk))
            pos += step
            if pos >= len(text):
                return n, n_unk

    def read(
        self, text: str, ids: list[int] | None, unk: int | None
    ) -> tuple[list[dict[str, list[int]]], TextCounts]:
        """`text`'s windows and counts, from its `whole_ids` entry; `unk` is the tokenizer's unk_token_id."""
        if ids is None:  # too long to tokenize whole: counted piece by piece
            n, n_unk = self.count_ids(text, unk)
        else:
            n, n_unk = len(ids), 0 if unk is None else ids.count(unk)
        windows = self.windows(self.kept_ids(text, ids))
        return windows, TextCounts(n + self.specials, n_unk, len(windows), n > self.budget)

    def counts(self, texts: list[str], unk: int | None) -> list[TextCounts]:
        """Each text's `TextCounts` (what `read` gives, without keeping the windows)."""
        return [self.read(t, ids, unk)[1] for t, ids in zip(texts, self.whole_ids(texts), strict=True)]

    def windows(self, ids: list[int]) -> list[dict[str, list[int]]]:
        """`ids` cut into windows of near-equal size, each with the model's special tokens around it."""
        rows = []
        for part in _cut_windows(ids, self.window_budget):
            input_ids = self.pre + part + self.post
            row = {"input_ids": input_ids, "attention_mask": [1] * len(input_ids)}
            if self.want_types:
                row["token_type_ids"] = self.pre_types + [self.seq_type] * len(part) + self.post_types
            rows.append(row)
        return rows


def _cut_windows(ids: list[int], window_budget: int) -> list[list[int]]:
    """The fewest windows of at most `window_budget` ids, of near-equal size.

    Even sizes (e.g. 100 + 100 + 100 rather than 126 + 126 + 48) leave no scrap window whose few tokens
    would weigh as much as a full one in the averaged prediction.
    """
    n = len(ids)
    if n <= window_budget:
        return [ids]
    size = -(-n // -(-n // window_budget))  # ceil(n / ceil(n / budget))
    return [ids[i : i + size] for i in range(0, n, size)]


def _whole_words(enc: Encoding, drop: str) -> list[int]:
    """The ids of `enc` less those of its last (or first) word, unless that word is all there is."""
    words = enc.word_ids
    if not words or words[0] == words[-1]:
        return list(enc.ids)
    if drop == "last":
        end = len(words) - 1
        while words[end] == words[-1]:
            end -= 1
        return list(enc.ids[: end + 1])
    start = 0
    while words[start] == words[0]:
        start += 1
    return list(enc.ids[start:])


def _special_template(
    backend: Tokenizer, specials: int
) -> tuple[list[int], list[int], int, list[int], list[int]]:
    """What the post-processor puts around one sequence: ids and type ids before it, its type id, after it.

    Windows are sliced from token ids and wrapped the way `post_process` wraps a sequence (`[CLS] ...
    [SEP]` for BERT, `<s> ... </s>` for RoBERTa, nothing for GPT-2), read once from a probe.
    """
    probe = backend.encode("hello world", add_special_tokens=False)
    full = backend.post_process(probe, None, True)
    k, ids, types = len(probe.ids), full.ids, full.type_ids
    for at in range(len(ids) - k + 1 if k and len(ids) == k + specials else 0):
        if ids[at : at + k] == probe.ids and len(set(types[at : at + k])) == 1:
            return ids[:at], types[:at], types[at], ids[at + k :], types[at + k :]
    raise ValueError(
        f"the tokenizer's post-processor does more than add special tokens around a text ({probe.ids} "
        f"became {ids}), so its texts cannot be cut into windows; pick another checkpoint."
    )


def window_probabilities(
    model: PreTrainedModel,
    pad: Callable[[list[dict[str, list[int]]]], Mapping[str, torch.Tensor]],
    windows: Sequence[dict[str, list[int]]],
    owner: Sequence[int],
    n_rows: int,
    batch_tokens: int,
    device: str = "cpu",
    autocast_bf16: bool = False,
) -> np.ndarray:
    """Class probabilities [n_rows, n_labels] (float64): each row's mean over its windows.

    The one window-inference routine of ftpipe (evaluate, the served model, and through it `ftpipe predict`
    and the gate's champion scoring). `windows[i]` belongs to row `owner[i]`; `pad` collates a list of
    windows into padded tensors (a tokenizer's `pad`). Windows are read longest first, and each batch
    takes windows while its padded size (rows x its longest window) stays within `batch_tokens`, so short
    texts go in wide batches and long ones in narrow batches (at least one window per batch). Under
    `torch.inference_mode`; `autocast_bf16` runs the forward pass under bf16 autocast (the softmax is in
    float32 either way). A multi-label head (`problem_type` multi_label_classification) gives each label its
    own sigmoid probability, averaged over the windows the same way.
    """
    import torch

    if len(windows) != len(owner):
        raise ValueError(f"{len(windows)} windows but {len(owner)} owners")
    if model.config.num_labels is None:
        raise ValueError("the model's config sets no num_labels")
    n_labels = int(model.config.num_labels)
    # a multi-label head scores each label on its own (sigmoid); a single-label one shares 1 (softmax)
    multi_label = model.config.problem_type == MULTI_LABEL
    sums = torch.zeros(n_rows, n_labels, dtype=torch.float64)
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i]["input_ids"]))
    start = 0
    with (
        torch.inference_mode(),
        torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast_bf16),
    ):
        while start < len(order):
            longest = len(windows[order[start]]["input_ids"])
            end = start + max(1, batch_tokens // max(1, longest))
            idx = order[start:end]
            batch = {k: v.to(device) for k, v in pad([windows[i] for i in idx]).items()}
            logits = model(**batch).logits.float()
            probs = (torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)).double().cpu()
            sums.index_add_(0, torch.tensor([int(owner[i]) for i in idx]), probs)
            start = end
    counts = torch.bincount(torch.tensor([int(o) for o in owner], dtype=torch.long), minlength=n_rows)
    if bool((counts == 0).any()):
        raise ValueError(f"{int((counts == 0).sum())} row(s) have no window to predict from")
    return (sums / counts[:, None].double()).numpy()


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX flag); False where flags cannot be read.

    The same rule as finetune's `precision: auto` (stages/finetune.py `auto_precision`), repeated here
    because this file must stand alone.
    """
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return any(f in line.partition(":")[2].split() for f in BF16_CPU_FLAGS)
    return False


def quantize_int8(model: PreTrainedModel) -> PreTrainedModel:
    """`model` with every nn.Linear replaced by torch's dynamic int8 version (weights int8, activations
    quantized per batch); CPU only. Its agreement with fp32 is measured by `python -m bench.inference`."""
    import torch

    with warnings.catch_warnings():
        # torch 2.10+ deprecates torch.ao.quantization in favour of torchao
        # (`torchao.quantization.quantize_(model, Int8DynamicActivationInt8WeightConfig())`); the call still
        # works and torchao is not a dependency of the served model, so the warning is silenced here only
        warnings.simplefilter("ignore", DeprecationWarning)
        # and its quantized-tensor creation (torch.quantize_per_tensor) for the same reason
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
        quantize: Any = torch.ao.quantization.quantize_dynamic  # untyped in torch
        quantized: PreTrainedModel = quantize(model, {torch.nn.Linear}, dtype=torch.qint8)
        return quantized


def _choice(config: Mapping[str, object], key: str, allowed: tuple[str, ...]) -> str:
    value = str(config[key])
    if value not in allowed:
        raise MlflowException(
            f"model_config[{key!r}] is {config[key]!r}; use one of {', '.join(allowed)} "
            f"(e.g. mlflow.pyfunc.load_model(uri, model_config={{{key!r}: {allowed[0]!r}}})).",
            error_code=INVALID_PARAMETER_VALUE,
        )
    return value


class TextClassifier(PythonModel):
    """DataFrame with a `text` column in; a DataFrame with `label` (name) and `score` (its probability) out.

    With `params={"probabilities": True}` (`model.predict(df, params=...)`, or `"params"` beside
    `"dataframe_records"` in a request to `mlflow models serve`) it adds a `p_<label>` column per class,
    that class's probability; the signature declares that param for versions registered since.

    A multi-label model (config `problem_type` MULTI_LABEL, label.task multi_label) answers a set per text
    (`label_sets`): `label` is the chosen names joined by "|" ("billing|bug"), chosen by the per-label
    thresholds of config.json `ftpipe_thresholds` (0.5 for a label it does not name), `score` their mean
    probability, and the `p_<label>` columns come always, since they are that model's answer.
    """

    def load_context(self, context: PythonModelContext) -> None:
        import torch
        from transformers import AutoTokenizer

        self.config = {**DEFAULT_CONFIG, **(context.model_config or {})}
        quantize = _choice(self.config, "quantize", QUANTIZE)
        precision = _choice(self.config, "precision", PRECISION)
        folder = Path(context.artifacts[HF_ARTIFACT])
        code = folder.parents[1] / "code"  # MLflow's layout: <model>/artifacts/hf_model, <model>/code
        manifest = _registered_module(code, "manifest")
        recorded = self.config.get("manifest")
        if not isinstance(recorded, dict):
            raise manifest.ManifestError(
                f"{folder.parents[1]}: the model was registered without a manifest of its files, so they "
                "cannot be checked and it is not loaded; register it again with this version of ftpipe."
            )
        fix = (
            "Do not serve this copy: load the version again from the registry (`ftpipe predict` and the "
            "register stage check it against the registry's record), or register the model again."
        )
        # before any file of the folder is read: the weights, config.json, tokenizer and code as registered
        manifest.check(recorded["hf_model"], manifest.tree_manifest(folder), f"{folder}", fix)
        manifest.check(recorded["code"], manifest.tree_manifest(code), f"{code}", fix)
        meanpool = _registered_module(code, "meanpool")
        # int8 dynamic quantization runs on the CPU only
        self.device = "cuda" if torch.cuda.is_available() and quantize == "none" else "cpu"
        # the folder's own code never runs: the mean-pool head is the registered meanpool.py, and any other
        # custom code is refused as usual (trust_remote_code is never decided by a file in the folder)
        meanpool.register_auto_classes()  # so the tokenizer's look at config.json resolves it locally too
        # a fast tokenizer: the tokenize stage refuses any other, so the registered one is fast
        self.tokenizer = cast(
            "PreTrainedTokenizerFast", AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        )
        self.model = meanpool.load_classifier(str(folder)).to(self.device).eval()
        if quantize == "int8":
            self.model = quantize_int8(self.model)
        self.autocast_bf16 = (
            precision == "auto"
            and quantize == "none"
            and (torch.cuda.is_bf16_supported() if self.device == "cuda" else native_bf16())
        )
        self.id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self.thresholds = label_thresholds(
            self.model.config, [self.id2label[k] for k in sorted(self.id2label)]
        )
        # built once: building it copies the tokenizer (21 ms for MiniLM's, a third of a one-text request)
        self.encoder = WindowEncoder.from_config(self.tokenizer, self.config)

    # MLflow reads the input's type hint: a DataFrame hint means "no schema from hints" (the logged
    # signature applies); no hint at all, or a non-list one, makes it warn on every load
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        texts = _texts(model_input)
        cfg = self.config
        per_text = self.encoder.encode(texts)
        probs = window_probabilities(
            self.model,
            self._pad,
            [w for row in per_text for w in row],
            [i for i, row in enumerate(per_text) for _ in row],
            len(texts),
            int(cfg["batch_size"]) * int(cfg["max_length"]),
            self.device,
            self.autocast_bf16,
        )
        if self.model.config.problem_type == MULTI_LABEL:  # a set of labels per text, every probability
            return label_sets(probs, [self.id2label[k] for k in sorted(self.id2label)], self.thresholds)
        best = probs.argmax(axis=1)
        labels = [self.id2label[int(k)] for k in best]
        scores = [float(v) for v in probs[np.arange(len(texts)), best]]
        out = pd.DataFrame({"label": labels, "score": scores})
        if (params or {}).get("probabilities"):  # one column per class, in the model's label order
            for k in sorted(self.id2label):
                out[f"p_{self.id2label[k]}"] = probs[:, k].astype(float)
        return out

    def _pad(self, windows: list[dict[str, list[int]]]) -> Mapping[str, torch.Tensor]:
        return self.tokenizer.pad(windows, return_tensors="pt")


def label_thresholds(config: Any, names: Sequence[str]) -> np.ndarray:
    """Each label's decision threshold, in id order: config.json's `ftpipe_thresholds` {name: t} (tuned by
    finetune on the validation split); DEFAULT_THRESHOLD for a label it does not name, or for every label
    of a model saved without it."""
    saved = getattr(config, "ftpipe_thresholds", None) or {}
    return np.array([float(saved.get(n, DEFAULT_THRESHOLD)) for n in names], dtype=np.float64)


def choose_labels(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(n, k) 0/1: per text, the labels whose probability reaches their threshold; where none does, the one
    label with the highest probability / threshold ratio (a text has at least one label).

    The rule of stages/model/multilabel.py `decide` (evaluate's), repeated because this file stands alone;
    tests/stages/serving/test_textclf_multilabel.py holds the two to the same answers.
    """
    chosen = (probs >= thresholds[None, :]).astype(np.int64)
    empty = chosen.sum(axis=1) == 0
    if empty.any():
        best = (probs[empty] / thresholds[None, :]).argmax(axis=1)
        chosen[np.flatnonzero(empty), best] = 1
    return chosen


def label_sets(probs: np.ndarray, names: Sequence[str], thresholds: np.ndarray) -> pd.DataFrame:
    """A multi-label model's answer: `label` (the chosen names in id order joined by LABEL_SET_SEPARATOR),
    `score` (the mean probability of the chosen labels) and a `p_<name>` column per label, always."""
    chosen = choose_labels(probs, thresholds)
    out = pd.DataFrame(
        {
            "label": [
                LABEL_SET_SEPARATOR.join(n for n, c in zip(names, row, strict=True) if c) for row in chosen
            ],
            "score": [float(v) for v in (probs * chosen).sum(axis=1) / chosen.sum(axis=1)],
        }
    )
    for k, name in enumerate(names):
        out[f"p_{name}"] = probs[:, k].astype(float)
    return out


def _registered_module(code: Path, name: str) -> ModuleType:
    """`code/<name>.py`, the copy of ftpipe's module registered with this model, imported by its path
    (under a name of its own, so no other copy on sys.path and no earlier version's can stand in)."""
    path = code / f"{name}.py"
    if not path.is_file():
        raise MlflowException(
            f"{path} is missing: the model was registered without ftpipe's {name}.py; register it again."
        )
    key = f"ftpipe_registered_{name}_{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path)
        if spec is None or spec.loader is None:
            raise MlflowException(f"{path} cannot be imported as a module; register the model again.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def _texts(model_input: object) -> list[str]:
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise ValueError(
                f"the model expects a DataFrame with a `text` column, got columns {list(model_input.columns)}; "
                'send e.g. {"dataframe_records": [{"text": "..."}]}'
            )
        col = model_input["text"]
    elif isinstance(model_input, dict):
        col = model_input["text"]
    else:
        col = model_input
    if isinstance(col, str):
        col = [col]
    texts = list(col)
    for i, t in enumerate(texts):
        why = why_refused(t)
        if why:
            # INVALID_PARAMETER_VALUE: `mlflow models serve` answers 400 with this message
            raise MlflowException(
                f"row {i}: the text is {why}; every row needs a non-blank string in `text`.",
                error_code=INVALID_PARAMETER_VALUE,
            )
    return texts


def why_refused(text: object) -> str | None:
    """Why `text` cannot be classified (empty, blank, missing, not a string), or None. `ftpipe predict`
    applies the same rule."""
    if text is None or (not isinstance(text, str) and pd.api.types.is_scalar(text) and pd.isna(text)):
        return "missing (None or NaN)"
    if not isinstance(text, str):
        return f"of type {type(text).__name__}, not a string"
    if not text:
        return "empty"
    if not text.strip():
        return "blank (whitespace only)"
    return None


# MLflow runs this file under a generated module name to build the model; importing it as part of
# ftpipe (the register stage, the tests) defines the class and does nothing else.
if not __name__.startswith("stages."):
    mlflow.models.set_model(TextClassifier())
