"""predict: batch prediction with a registered model, streamed in batches, as a Prefect flow.

    ftpipe predict texts.csv predictions.parquet                 # models:/<register.model_name>@champion
    ftpipe predict texts.jsonl out.jsonl --version 3 --batch-size 512 --id-column doc_id --text-column body
    ftpipe predict texts.csv out.csv --quantize int8             # int8 dynamic quantization (CPU), faster

The input is a CSV, JSONL or Parquet file with an id column and a text column; it is read in batches
(pyarrow record batches, pandas chunks, JSONL line by line), so a file larger than memory is fine. Each
batch goes through the registered model (a DataFrame with a `text` column in,
`label` and `score` out) and is appended to the output (CSV, JSONL or Parquet, chosen by its extension):
the input id, `label`, `score`. The output is written to a temporary sibling and renamed at the end, so a
failed run never leaves a partial file. A missing, empty, blank or non-string text stops the run, naming
the file, row and id (the served model refuses the same texts); a CSV output escapes cells a spreadsheet
would run as formulas (`stages/core/csvsafe.py`). MLflow is found the way the register stage finds it:
`MLFLOW_TRACKING_URI`, else `mlflow.db` at the repository root, under the registry's one retry and
timeout policy (`register.retries`, `backoff_s`, `timeout_s`): a store that is down or hangs ends the
command within `register.timeout_s` with one line saying why, the password masked. The model is loaded only after every
file of it matches the manifest recorded when it was registered (`stages/registry/integrity.py`
`load_uri_verified`), so only registered versions (`models:/NAME/VERSION`, `models:/NAME@ALIAS`) are taken.
`--quantize none|int8` overrides the model's `quantize` setting at load (its default is
`register.quantize` as registered); bench/README.md states int8's speed and agreement with fp32.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_BATCH_SIZE = 256
SUMMARY_ARTIFACT_KEY = "predict-summary"
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")  # MLflow's codes for a wrong model URI


class PredictError(ValueError):
    """Input, output or model that cannot be used; the message names the file, row or column and the fix."""


def file_format(path: str | Path) -> str:
    """csv | jsonl | parquet, from the file extension."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise PredictError(
            f"{path}: unknown file type `{Path(path).suffix}`; use one of {', '.join(sorted(FORMATS))}."
        )
    return fmt


def _check_columns(path: str | Path, have: list[str], want: list[str], where: str = "") -> None:
    missing = [c for c in want if c not in have]
    if missing:
        raise PredictError(
            f"{path}{where}: no column {', '.join(f'`{c}`' for c in missing)}; it has: "
            f"{', '.join(map(str, have)) or 'nothing'}. Name the columns with --id-column / --text-column."
        )


def iter_batches(
    path: str | Path, id_column: str = "id", text_column: str = "text", batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[Any]:
    """Yield DataFrames of at most `batch_size` rows with the id and text columns, streaming the file."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: input file not found.")
    fmt, cols = file_format(path), [id_column, text_column]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        _check_columns(path, pf.schema_arrow.names, cols)
        for rb in pf.iter_batches(batch_size=batch_size, columns=cols):
            yield rb.to_pandas()
    elif fmt == "csv":
        _check_columns(path, list(pd.read_csv(path, nrows=0).columns), cols)
        yield from pd.read_csv(path, usecols=cols, chunksize=batch_size, dtype=str, keep_default_na=False)
    else:
        rows: list[dict[str, Any]] = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise PredictError(
                        f"{path} line {lineno}: not valid JSON ({exc}). Fix or remove the line."
                    ) from None
                if not isinstance(obj, dict):
                    raise PredictError(
                        f"{path} line {lineno}: expected a JSON object, got {type(obj).__name__}."
                    )
                _check_columns(path, list(obj), cols, f" line {lineno}")
                rows.append({id_column: obj[id_column], text_column: obj[text_column]})
                if len(rows) == batch_size:
                    yield pd.DataFrame(rows, columns=cols)
                    rows = []
        if rows:
            yield pd.DataFrame(rows, columns=cols)


def count_rows(path: str | Path) -> int | None:
    """Rows in the input, for the progress bar's total: Parquet from its metadata; CSV by a streaming pass of
    the csv module (a quoted text may span lines, blank lines are skipped, as pandas does); JSONL by its
    non-blank lines. Reading is far cheaper than predicting, so the pass costs little of the run."""
    import csv

    fmt = file_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        if fmt == "csv":
            return max(0, sum(1 for row in csv.reader(fh) if row) - 1)  # less the header
        return sum(1 for line in fh if line.strip())


class _Writer:
    """Appends prediction batches to an open file in the output's format."""

    def __init__(self, fmt: str, fh: Any):
        self.fmt, self.fh, self.parquet, self.schema, self.first = fmt, fh, None, None, True

    def write(self, df: Any) -> None:
        if self.fmt == "csv":
            from stages.core.csvsafe import escape_frame

            escape_frame(df).to_csv(self.fh, header=self.first, index=False)  # no formulas in a spreadsheet
        elif self.fmt == "jsonl":
            for rec in df.to_dict(orient="records"):
                self.fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self.parquet is None:
                self.schema = table.schema
                self.parquet = pq.ParquetWriter(self.fh, self.schema)
            self.parquet.write_table(table.cast(self.schema))  # type: ignore[attr-defined]
        self.first = False

    def close(self, id_column: str) -> None:
        if self.fmt == "parquet":
            if self.parquet is None:  # no rows: still a valid, empty file with the right columns
                import pyarrow as pa
                import pyarrow.parquet as pq

                schema = pa.schema(
                    [(id_column, pa.string()), ("label", pa.string()), ("score", pa.float64())]
                )
                pq.write_table(schema.empty_table(), self.fh)
            else:
                self.parquet.close()
        elif self.fmt == "csv" and self.first:
            self.fh.write(f"{id_column},label,score\n")


def predict_batch(
    model: Any, batch: Any, id_column: str, text_column: str, path: str | Path = "input", first_row: int = 1
) -> Any:
    """One batch through the model: a DataFrame of id, label, score in the input's order.

    A missing, empty, blank or non-string text stops it, naming `path` and the row (`first_row` is the
    number of the batch's first row in the file, counting data rows from 1), as the served model does.
    """
    import pandas as pd

    from stages.serving.textclf import why_refused

    texts = batch[text_column]
    why = [why_refused(t) for t in texts]
    bad = [i for i, w in enumerate(why) if w]
    if bad:
        first = batch[id_column].iloc[bad[0]]
        raise PredictError(
            f"{path} row {first_row + bad[0]} ({id_column} = {first!r}): `{text_column}` is {why[bad[0]]} "
            f"({len(bad)} such row(s) in this batch). Drop or fill those rows first."
        )
    pred = model.predict(pd.DataFrame({"text": texts.tolist()}))
    if (
        not isinstance(pred, pd.DataFrame)
        or not {"label", "score"} <= set(pred.columns)
        or len(pred) != len(batch)
    ):
        raise PredictError(
            "the model did not return a `label` and a `score` per row; batch prediction needs a model "
            "registered by ftpipe's register stage (a pyfunc that maps a `text` column to `label`, `score`)."
        )
    return pd.DataFrame(
        {
            id_column: batch[id_column].to_numpy(),
            "label": pred["label"].astype(str).to_numpy(),
            "score": pred["score"].astype(float).to_numpy(),
        }
    )


def predict_file(
    model: Any,
    input_path: str | Path,
    output_path: str | Path,
    id_column: str = "id",
    text_column: str = "text",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every row of `input_path` in batches; write id, label, score to `output_path` atomically."""
    from tqdm.auto import tqdm

    from stages.core.io import atomic_file

    if batch_size < 1:
        raise PredictError(f"batch size must be at least 1, got {batch_size}.")
    out_fmt = file_format(output_path)
    if Path(output_path).resolve() == Path(input_path).resolve():
        raise PredictError(f"{output_path}: the output would overwrite the input; choose another path.")
    rows, batches, labels = 0, 0, Counter[str]()
    with (
        atomic_file(output_path, "wb" if out_fmt == "parquet" else "w") as fh,
        tqdm(total=count_rows(input_path), unit="rows", desc="predict", disable=not progress) as bar,
    ):
        writer = _Writer(out_fmt, fh)
        for batch in iter_batches(input_path, id_column, text_column, batch_size):
            out = predict_batch(model, batch, id_column, text_column, input_path, rows + 1)
            writer.write(out)
            rows, batches = rows + len(out), batches + 1
            labels.update(out["label"])
            bar.update(len(out))
        writer.close(id_column)
    return {
        "input": str(input_path),
        "output": str(output_path),
        "rows": rows,
        "batches": batches,
        "batch_size": batch_size,
        "labels": dict(sorted(labels.items())),
    }


def register_params(params_path: str | Path = "params.yaml") -> Any:
    """The `register` section of the params file (the model name, the retry policy), else its defaults."""
    from stages.config.params import load_section, read_params_file
    from stages.config.register import RegisterParams

    path = Path(params_path)
    if path.is_file() and "register" in read_params_file(path):
        return load_section("register", RegisterParams, path)
    return RegisterParams()


def default_model_uri(version: str | None = None, params_path: str | Path = "params.yaml") -> str:
    """`models:/NAME@champion` (NAME = register.model_name), or a given version number or alias."""
    from stages.registry.client import CHAMPION

    name = register_params(params_path).model_name
    if version is None:
        return f"models:/{name}@{CHAMPION}"
    return f"models:/{name}/{version}" if str(version).isdigit() else f"models:/{name}@{version}"


def load_model(model_uri: str, params_path: str | Path = "params.yaml", quantize: str | None = None) -> Any:
    """The pyfunc model at `model_uri`, from the store the register stage writes to, under the registry's
    one retry and timeout policy (`register.retries`, `backoff_s`, `timeout_s` of the params file);
    `quantize` (none | int8) overrides the registered model's own setting."""
    from mlflow.exceptions import MlflowException

    from stages.core.redact import mask_secrets, redact_uri
    from stages.registry import tracking
    from stages.registry.integrity import load_uri_verified
    from stages.serving.manifest import ManifestError

    uri = tracking.tracking_uri()
    try:
        # downloaded under the policy, then loaded only once every file matches the registered manifest
        return load_uri_verified(
            model_uri,
            uri,
            register_params(params_path).policy(),
            None if quantize is None else {"quantize": quantize},
        )
    except ManifestError as exc:
        raise PredictError(str(exc)) from None
    except tracking.TrackingUnavailable as exc:
        raise PredictError(f"cannot load {model_uri}: {exc}") from None
    except MlflowException as exc:
        if exc.error_code not in _NOT_FOUND:
            raise PredictError(
                f"cannot load {model_uri} from {redact_uri(uri)}: {mask_secrets(exc.message)}"
            ) from None
        raise PredictError(
            f"cannot load {model_uri} from {redact_uri(uri)}: {mask_secrets(str(exc).splitlines()[0])} "
            "Register a model first (`dvc repro register` or `ftpipe run`), or pass --model-uri / --version."
        ) from None


# -------------------------------------------------------------------------------------- the flow


def _predict(
    input_path: str,
    output_path: str,
    model_uri: str | None = None,
    id_column: str = "id",
    text_column: str = "text",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    params_path: str = "params.yaml",
    quantize: Literal["none", "int8"] | None = None,
) -> dict[str, Any]:
    """Batch prediction: load the model, stream the input through it, write labels and scores."""
    from prefect import task
    from prefect.artifacts import create_markdown_artifact
    from prefect.cache_policies import NO_CACHE

    uri = model_uri or default_model_uri(params_path=params_path)
    # no task retries: load_model retries the store itself, bounded by register.timeout_s
    model = task(name="load-model", cache_policy=NO_CACHE)(load_model)(uri, params_path, quantize)
    stats = task(name="predict-file", cache_policy=NO_CACHE)(predict_file)(
        model, input_path, output_path, id_column, text_column, batch_size, progress
    )
    stats["model_uri"] = uri
    stats["quantize"] = quantize or "as registered"
    labels = ", ".join(f"{k}: {v}" for k, v in stats["labels"].items()) or "none"
    markdown = (
        f"## ftpipe predict\n\n{stats['rows']} rows from `{input_path}` -> `{output_path}` with "
        f"`{uri}`, in {stats['batches']} batches of up to {batch_size}.\n\nLabels: {labels}.\n"
    )
    print(markdown, flush=True)
    create_markdown_artifact(markdown, key=SUMMARY_ARTIFACT_KEY, description="ftpipe batch prediction")
    return stats


def build_flow() -> Any:
    """The Prefect flow object (built on first use so importing this module stays cheap)."""
    from prefect import flow

    _predict.__name__ = _predict.__qualname__ = "predict"  # entrypoint `flows/predict.py:predict`
    return flow(name="predict", validate_parameters=True)(_predict)


def __getattr__(name: str) -> Any:
    if name == "predict":
        globals()["predict"] = value = build_flow()
        return value
    raise AttributeError(name)


def _cmd_predict(args: argparse.Namespace) -> int:
    from flows.predict import predict

    try:
        uri = args.model_uri or default_model_uri(args.version, args.params)
        predict(
            input_path=args.input,
            output_path=args.output,
            model_uri=uri,
            id_column=args.id_column,
            text_column=args.text_column,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            params_path=args.params,
            quantize=args.quantize,
        )
    except PredictError as exc:
        print(f"\nftpipe predict: {exc}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub: Any) -> None:
    """`ftpipe predict`."""
    p = sub.add_parser(
        "predict",
        help="batch-predict labels and scores for a CSV/JSONL/Parquet file of texts",
        description="Predict a label and a score for every row of INPUT with a registered model, in "
        "batches, and write them beside the row ids to OUTPUT (format from its extension).",
    )
    p.add_argument("input", help="CSV, JSONL or Parquet file with an id and a text column")
    p.add_argument("output", help="where to write id, label, score (.csv, .jsonl or .parquet)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--model-uri", help="any MLflow model URI (default: models:/<register.model_name>@champion)"
    )
    which.add_argument(
        "--version", help="a version number or alias of the registered model, e.g. 3 or challenger"
    )
    p.add_argument("--id-column", default="id", help="input column with the row ids (default: id)")
    p.add_argument("--text-column", default="text", help="input column with the texts (default: text)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows per batch (default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--quantize",
        choices=("none", "int8"),
        default=None,
        help="int8: dynamic int8 quantization of the model's Linear layers (CPU; faster, see bench/README.md "
        "for its agreement with fp32); none: fp32 (default: as registered, register.quantize)",
    )
    p.add_argument("--params", default="params.yaml", help="params file giving register.model_name")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)
