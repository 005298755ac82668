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
sees the same tokens as the evaluated one and, like it, averages the probabilities of a text's windows. `encode` mirrors `stages/tokenize.py::encode_batch` (a test checks they agree); it is
repeated here because this file must stand alone.
"""

from __future__ import annotations

import copy
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

HF_ARTIFACT = "hf_model"
MEAN_POOL_TYPE = "ftpipe_mean_pool"  # stages/common/meanpool.py MODEL_TYPE
DEFAULT_CONFIG = {
    "max_length": 128,
    "truncation": "head",
    "head_fraction": 0.25,
    "windows": 1,
    "batch_size": 32,
}


def encode(
    tok: Any, texts: list[str], max_length: int, truncation: str, head_fraction: float, windows: int = 1
) -> list[list[dict]]:
    """Per text, its token windows (at most `windows` of `max_length` tokens, special tokens included).

    When a text is longer than the windows hold, the truncation policy picks what is kept; the kept
    tokens are cut into windows of near-equal size.
    """
    from tokenizers import Encoding

    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.no_truncation()
    backend.no_padding()
    window_budget = max_length - tok.num_special_tokens_to_add(pair=False)
    budget = window_budget * windows
    want_types = "token_type_ids" in tok.model_input_names
    out = []
    for text, enc in zip(texts, backend.encode_batch(texts, add_special_tokens=False), strict=True):
        n = len(enc.ids)
        if n > budget:
            if truncation == "head":
                enc.truncate(budget, direction="right")
            elif truncation == "tail":
                enc.truncate(budget, direction="left")
            else:
                head_n = max(1, int(budget * head_fraction))
                tail = backend.encode(text, add_special_tokens=False)
                enc.truncate(head_n, direction="right")
                tail.truncate(budget - head_n, direction="left")
                enc = Encoding.merge([enc, tail], growing_offsets=True)
            n = budget
        parts = [enc]
        if n > window_budget:
            enc.truncate(-(-n // -(-n // window_budget)), direction="right")  # windows of near-equal size
            parts = [enc, *enc.overflowing]
        rows = []
        for part in parts:
            final = backend.post_process(part, None, True)
            row = {"input_ids": final.ids, "attention_mask": final.attention_mask}
            if want_types:
                row["token_type_ids"] = final.type_ids
            rows.append(row)
        out.append(rows)
    return out


class TextClassifier(PythonModel):
    """DataFrame with a `text` column in; a DataFrame with `label` (name) and `score` (its probability) out."""

    def load_context(self, context: Any) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.config = {**DEFAULT_CONFIG, **(context.model_config or {})}
        folder = context.artifacts[HF_ARTIFACT]
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        # a `pooling: mean` model carries its head's code in the folder (config `auto_map`); only that
        # known head is trusted, any other custom code is refused as usual
        own_code = _model_type(folder) == MEAN_POOL_TYPE
        self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=own_code)
        self.model = (
            AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=own_code)
            .to(self.device)
            .eval()
        )
        self.id2label = {int(k): v for k, v in self.model.config.id2label.items()}

    # MLflow reads the input's type hint: a DataFrame hint means "no schema from hints" (the logged
    # signature applies); no hint at all, or a non-list one, makes it warn on every load
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        import torch

        texts = _texts(model_input)
        cfg = self.config
        per_text = encode(
            self.tokenizer,
            texts,
            int(cfg["max_length"]),
            str(cfg["truncation"]),
            float(cfg["head_fraction"]),
            int(cfg["windows"]),
        )
        windows = [w for row in per_text for w in row]
        owner = [i for i, row in enumerate(per_text) for _ in row]
        # longest first, so each padded batch wastes little
        order = sorted(range(len(windows)), key=lambda i: -len(windows[i]["input_ids"]))
        sums = torch.zeros(len(texts), len(self.id2label), dtype=torch.float64)
        bs = int(cfg["batch_size"])
        with torch.inference_mode():
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                batch = self.tokenizer.pad([windows[i] for i in idx], return_tensors="pt").to(self.device)
                probs = torch.softmax(self.model(**batch).logits.float(), dim=-1).double().cpu()
                sums.index_add_(0, torch.tensor([owner[i] for i in idx]), probs)
        counts = torch.tensor([max(1, len(row)) for row in per_text], dtype=torch.float64)
        best = (sums / counts[:, None]).max(dim=-1)
        labels = [self.id2label[k] for k in best.indices.tolist()]
        scores = [float(v) for v in best.values.tolist()]
        return pd.DataFrame({"label": labels, "score": scores})


def _model_type(folder: str) -> str | None:
    import json
    from pathlib import Path

    try:
        return json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        return None


def _texts(model_input: Any) -> list[str]:
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
    return ["" if t is None else str(t) for t in list(col)]


# MLflow runs this file under a generated module name to build the model; importing it as part of
# ftpipe (the register stage, the tests) defines the class and does nothing else.
if not __name__.startswith("stages."):
    mlflow.models.set_model(TextClassifier())
