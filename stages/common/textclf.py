"""The served model: a lean MLflow pyfunc around a Hugging Face sequence-classification folder.

    import mlflow, pandas as pd
    model = mlflow.pyfunc.load_model("models:/ftpipe-bbc-news@champion")
    model.predict(pd.DataFrame({"text": ["Shares rose after the bank's profit beat forecasts."]}))
    #       label     score
    # 0  business  0.981...

The register stage logs this file as MLflow "models from code": MLflow copies it into the model and runs
it at load, so a registered model needs mlflow, torch, transformers and pandas, never the ftpipe
repository. The model folder (weights, config with id2label, tokenizer) travels as the artifact
`hf_model`; `model_config` carries the truncation policy the pipeline tokenized with (`max_length`,
`truncation` = head | tail | head+tail, `head_fraction`), so a served prediction sees the same tokens as
the evaluated one. `encode` mirrors `stages/tokenize.py::encode_batch` (a test checks they agree); it is
repeated here because this file must stand alone.
"""

from __future__ import annotations

import copy
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

HF_ARTIFACT = "hf_model"
DEFAULT_CONFIG = {"max_length": 128, "truncation": "head", "head_fraction": 0.25, "batch_size": 32}


def encode(tok: Any, texts: list[str], max_length: int, truncation: str, head_fraction: float) -> list[dict]:
    """Token ids per text, cut to `max_length` by the truncation policy, with the special tokens added."""
    from tokenizers import Encoding

    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.no_truncation()
    backend.no_padding()
    budget = max_length - tok.num_special_tokens_to_add(pair=False)
    want_types = "token_type_ids" in tok.model_input_names
    out = []
    for text, enc in zip(texts, backend.encode_batch(texts, add_special_tokens=False), strict=True):
        if len(enc.ids) > budget:
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
        final = backend.post_process(enc, None, True)
        row = {"input_ids": final.ids, "attention_mask": final.attention_mask}
        if want_types:
            row["token_type_ids"] = final.type_ids
        out.append(row)
    return out


class TextClassifier(PythonModel):
    """DataFrame with a `text` column in; a DataFrame with `label` (name) and `score` (its probability) out."""

    def load_context(self, context: Any) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.config = {**DEFAULT_CONFIG, **(context.model_config or {})}
        folder = context.artifacts[HF_ARTIFACT]
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(self.device).eval()
        self.id2label = {int(k): v for k, v in self.model.config.id2label.items()}

    # MLflow reads the input's type hint: a DataFrame hint means "no schema from hints" (the logged
    # signature applies); no hint at all, or a non-list one, makes it warn on every load
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        import torch

        texts = _texts(model_input)
        cfg = self.config
        rows = encode(
            self.tokenizer, texts, int(cfg["max_length"]), str(cfg["truncation"]), float(cfg["head_fraction"])
        )
        # longest first, so each padded batch wastes little
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
        labels: list[str] = [""] * len(rows)
        scores: list[float] = [0.0] * len(rows)
        bs = int(cfg["batch_size"])
        with torch.inference_mode():
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                batch = self.tokenizer.pad([rows[i] for i in idx], return_tensors="pt").to(self.device)
                probs = torch.softmax(self.model(**batch).logits.float(), dim=-1)
                best = probs.max(dim=-1)
                for i, p, k in zip(idx, best.values.tolist(), best.indices.tolist(), strict=True):
                    labels[i], scores[i] = self.id2label[k], float(p)
        return pd.DataFrame({"label": labels, "score": scores})


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
