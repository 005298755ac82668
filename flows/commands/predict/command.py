"""predict: batch prediction with a registered model, streamed in batches and resumable; a plain command.

    ftpipe predict texts.csv predictions.parquet                 # models:/<register.model_name>@champion
    ftpipe predict texts.jsonl out.jsonl --version 3 --batch-size 512 --id-column doc_id --text-column body
    ftpipe predict texts.csv out.csv --quantize int8             # int8 dynamic quantization (CPU), faster
    ftpipe predict texts.csv out.csv --probabilities             # a p_<label> column per class
    ftpipe predict texts.csv out.csv --encoding cp1252           # a file not saved as UTF-8

The input (CSV/TSV, JSONL or Parquet with an id and a text column) is read in batches (flows/commands/predict/inputs.py);
each batch goes through the registered model (a DataFrame with a `text` column in, `label` and `score`
out) and the results are saved in parts as they come, in `.<output name>.parts/` beside the output with
a manifest (flows/commands/predict/parts.py). A run stopped for any reason (Ctrl-C, a crash, SIGKILL, a full disk)
keeps its parts: the same command again continues after the last one, as long as the input, the model
version and the settings are the same (`--no-resume` starts afresh). At the end the parts are joined
into the output (tmp + rename) and the folder removed. Ids are written as strings, whatever type the
input gave them. No Prefect: this command starts no server. A multi-label version (label.task
multi_label) writes its set per text as `label` ("billing|bug", names in the model's label order), the
chosen labels' mean probability as `score`, and a `p_<label>` column per label whether or not
--probabilities is given: those probabilities are that model's answer.

Before the model loads, the command takes the output's lock (one writer per output: a second predict on
it is refused at once, flows/commands/predict/lock.py; a folder it cannot write in is said here) and
reads the whole input once (its columns, every text: `scan_input`), so a refusal costs no model load
and leaves nothing behind. Texts shorter than any the version trained on (`lengths.py`) are counted in
one warning line. Exit 0 done, 1 the model or store cannot be used or another predict is writing the
output, 2 the input or output cannot (one line naming the file, row and fix).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from flows.commands.predict.inputs import (
    FORMATS,
    InputError,
    PredictError,
    check_texts,
    count_rows,
    file_format,
    fingerprint,
    iter_batches,
    scan_input,
)
from flows.commands.predict.lock import output_lock
from flows.commands.predict.model import default_model_uri, load_model, load_version
from flows.commands.predict.parts import PartsFolder, check_output, write_failed_message

if TYPE_CHECKING:  # pandas is imported where a batch is made: the command's start does not wait for it
    import pandas as pd
    from mlflow.pyfunc import PyFuncModel
    from tqdm.auto import tqdm

    from flows.commands.predict.lengths import TrainedLengths

__all__ = ["FORMATS", "PredictError", "count_rows", "default_model_uri", "file_format", "iter_batches"]
__all__ += ["load_model", "predict_batch", "predict_file"]

DEFAULT_BATCH_SIZE = 256
DEFAULT_PART_ROWS = 4096  # rows per saved part: what a stopped run can lose at most
NO_PROBABILITIES = (
    "the model returned no class probabilities: it was registered before ftpipe's served model gave them "
    "(its signature has no `probabilities` param); register it again, or drop --probabilities."
)


class Options(TypedDict):
    """The settings of a run that a resume must share (they are part of the parts folder's key)."""

    id_column: str
    text_column: str
    batch_size: int
    part_rows: int
    probabilities: bool
    encoding: str


class PredictStats(TypedDict):
    """What `predict_file` did: rows, batches, labels, what this call predicted, the short texts."""

    input: str
    output: str
    rows: int
    batches: int
    batch_size: int
    labels: dict[str, int]
    resumed_rows: int
    predicted: int
    predict_s: float
    first_batch_s: float | None
    short: int  # texts shorter than any the model trained on
    first_short: str


def predict_batch(
    model: PyFuncModel,
    batch: pd.DataFrame,
    id_column: str,
    text_column: str,
    path: str | Path = "input",
    first_row: int = 1,
    probabilities: bool = False,
) -> pd.DataFrame:
    """One batch through the model: a DataFrame of id, label, score (and `p_<label>`s) in the input's order.

    A missing, empty, blank or non-string text stops it, naming `path` and the row (`first_row` is the
    number of the batch's first row in the file, counting data rows from 1), as the served model does.
    """
    import pandas as pd

    check_texts(batch, id_column, text_column, path, first_row)
    texts = batch[text_column]
    frame = pd.DataFrame({"text": texts.tolist()})
    pred = model.predict(frame, params={"probabilities": True}) if probabilities else model.predict(frame)
    if (
        not isinstance(pred, pd.DataFrame)
        or not {"label", "score"} <= set(pred.columns)
        or len(pred) != len(batch)
    ):
        raise PredictError(
            "the model did not return a `label` and a `score` per row; batch prediction needs a model "
            "registered by ftpipe's register stage (a pyfunc that maps a `text` column to `label`, `score`)."
        )
    # a single-label model gives p_<label> columns only when asked; a multi-label one always (its answer)
    probs = [c for c in pred.columns if str(c).startswith("p_")]
    if probabilities and not probs:
        raise PredictError(NO_PROBABILITIES)
    out = {id_column: batch[id_column].to_numpy(), "label": pred["label"].astype(str).to_numpy()}
    out["score"] = pred["score"].astype(float).to_numpy()
    return pd.DataFrame({**out, **{c: pred[c].astype(float).to_numpy() for c in probs}})


class _RowCounter(threading.Thread):
    """Counts the input's rows beside the prediction, for the progress bar's total (not before it)."""

    def __init__(self, path: Path, encoding: str):
        super().__init__(daemon=True)
        self.path, self.encoding = path, encoding
        self.total: int | None = None

    def run(self) -> None:
        self.total = count_rows(self.path, self.encoding)


def _part_rows(batch_size: int, part_rows: int | None) -> int:
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}.")
    want = part_rows or DEFAULT_PART_ROWS
    if want < 1:
        raise InputError(f"--part-rows must be at least 1, got {want}.")
    return -(-want // batch_size) * batch_size  # whole batches: a resume feeds the model the same ones


def _parts_folder(
    input_path: Path, output_path: Path, opts: Options, identity: dict[str, str] | None, resume: bool
) -> PartsFolder:
    """The output's work folder, resumed when it was made from this input, model and settings."""
    fmt = check_output(input_path, output_path)
    if not input_path.is_file():
        raise InputError(f"{input_path}: input file not found.")
    file_format(input_path)
    key = {
        "input": str(input_path.resolve()),
        "input_fingerprint": fingerprint(input_path),
        "model": identity or {"model": "in-process"},
        "output_format": fmt,
        **opts,
    }
    return PartsFolder.open(output_path, key, resume)


def predict_file(
    model: PyFuncModel,
    input_path: str | Path,
    output_path: str | Path,
    id_column: str = "id",
    text_column: str = "text",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    *,
    encoding: str = "utf-8",
    probabilities: bool = False,
    resume: bool = True,
    part_rows: int | None = None,
    identity: dict[str, str] | None = None,
    lengths: TrainedLengths | None = None,
    lock: bool = True,
) -> PredictStats:
    """Predict every row of `input_path` in batches, saving parts as it goes; join them into `output_path`.

    `identity` names the model for a resume (its concrete version and files' hash): parts made by another
    model, input or settings are never mixed in. The output's lock is held throughout (`lock=False`: the
    caller holds it). `lengths` counts the texts shorter than any the model trained on. The stats: rows,
    batches, labels, how many rows this call predicted (`predicted`) after resuming from
    `resumed_rows`, and the short texts (`short`, `first_short`).
    """
    with output_lock(output_path) if lock else contextlib.nullcontext():
        return _predict_file(
            model,
            Path(input_path),
            Path(output_path),
            id_column,
            text_column,
            batch_size,
            progress,
            encoding=encoding,
            probabilities=probabilities,
            resume=resume,
            part_rows=part_rows,
            identity=identity,
            lengths=lengths,
        )


def _predict_file(
    model: PyFuncModel,
    inp: Path,
    out: Path,
    id_column: str,
    text_column: str,
    batch_size: int,
    progress: bool,
    *,
    encoding: str,
    probabilities: bool,
    resume: bool,
    part_rows: int | None,
    identity: dict[str, str] | None,
    lengths: TrainedLengths | None,
) -> PredictStats:
    part = _part_rows(batch_size, part_rows)
    opts = Options(
        id_column=id_column,
        text_column=text_column,
        batch_size=batch_size,
        part_rows=part,
        probabilities=probabilities,
        encoding=encoding,
    )
    work = _parts_folder(inp, out, opts, identity, resume)
    if work.note:
        print(f"ftpipe predict: {work.note}", flush=True)
    from tqdm.auto import tqdm

    counter = _RowCounter(inp, encoding)
    counter.start()
    t0 = time.monotonic()
    run = _PredictionPass(work, model, inp, opts, probabilities, lengths)
    with tqdm(total=None, initial=work.rows_done, unit="rows", desc="predict", disable=not progress) as bar:
        try:
            run.all_batches(bar, counter)
        except OSError as exc:  # writing a part, the manifest or the output: a full disk, a permission
            if not work.wrote(exc):
                raise
            counter.join(5)
            raise InputError(write_failed_message(exc, work, counter.total)) from None
        except PredictError:
            if not work.parts:  # refused before anything was saved: no empty folder left behind
                shutil.rmtree(work.folder, ignore_errors=True)
            raise
        except BaseException:  # a model crash, Ctrl-C: the parts stay for the next run
            print(_stopped(work), file=sys.stderr, flush=True)
            raise
    seconds = time.monotonic() - t0
    return run.stats(inp, out, batch_size, seconds)


def _stopped(work: PartsFolder) -> str:
    if not work.parts:
        return "ftpipe predict: stopped before any part was saved."
    return (
        f"ftpipe predict: stopped; the same command resumes after {work.rows_done} rows "
        f"(saved in {work.folder})."
    )


class _PredictionPass:
    """One pass over the input: skip what the parts hold, predict the rest, save parts, join them."""

    def __init__(
        self,
        work: PartsFolder,
        model: PyFuncModel,
        inp: Path,
        opts: Options,
        probabilities: bool,
        lengths: TrainedLengths | None = None,
    ):
        self.work, self.model, self.inp, self.opts, self.probabilities = work, model, inp, opts, probabilities
        self.lengths = lengths
        self.resumed_rows = work.rows_done
        self.pending: list[pd.DataFrame] = []
        self.short, self.first_short = 0, ""  # of the pending rows: texts shorter than any trained on
        self.rows, self.batches, self.predicted = 0, 0, 0
        self.first_batch_s: float | None = None
        self.columns: list[str] = work.columns or [opts["id_column"], "label", "score"]

    def all_batches(self, bar: tqdm[object], counter: _RowCounter) -> None:
        o = self.opts
        t0 = time.monotonic()
        for batch in iter_batches(self.inp, o["id_column"], o["text_column"], o["batch_size"], o["encoding"]):
            self.batches += 1
            skip = max(0, min(len(batch), self.resumed_rows - self.rows))
            self.rows += skip
            if skip == len(batch):
                continue
            self._one(batch.iloc[skip:], bar)
            if self.first_batch_s is None:
                self.first_batch_s = time.monotonic() - t0
            if counter.total is not None and bar.total is None:
                bar.total = counter.total
        self._flush()
        counter.join()
        bar.total = self.rows if counter.total is None else counter.total
        bar.refresh()
        self.work.join(self._output_columns())

    def _one(self, batch: pd.DataFrame, bar: tqdm[object]) -> None:
        o = self.opts
        out = predict_batch(
            self.model, batch, o["id_column"], o["text_column"], self.inp, self.rows + 1, self.probabilities
        )
        self.columns = list(out.columns)
        self.pending.append(out)
        if self.lengths is not None:
            self._count_short(batch)
        self.rows += len(out)
        self.predicted += len(out)
        bar.update(len(out))
        if sum(len(f) for f in self.pending) >= o["part_rows"]:
            self._flush()

    def _count_short(self, batch: pd.DataFrame) -> None:
        assert self.lengths is not None
        o = self.opts
        for i, text in enumerate(batch[o["text_column"]]):
            if self.lengths.too_short(text):
                self.short += 1
                row = self.rows + i + 1  # self.rows: the rows before this batch
                self.first_short = (
                    self.first_short or f"row {row} ({o['id_column']} = {batch[o['id_column']].iloc[i]!r})"
                )

    def _flush(self) -> None:
        if self.pending:
            import pandas as pd

            frame = pd.concat(self.pending, ignore_index=True)
            self.pending = []
            self.work.add_part(
                frame, dict(Counter(frame["label"])), self.columns, self.short, self.first_short
            )
            self.short, self.first_short = 0, ""

    def _output_columns(self) -> list[str]:
        return self.work.columns or self.columns

    def stats(self, inp: Path, out: Path, batch_size: int, seconds: float) -> PredictStats:
        labels: Counter[str] = Counter()
        for p in self.work.parts:
            labels.update(p["labels"])
        short = sum(int(p.get("short", 0)) for p in self.work.parts)
        first_short = next((p["first_short"] for p in self.work.parts if p.get("first_short")), "")
        return {
            "input": str(inp),
            "output": str(out),
            "rows": self.rows,
            "batches": self.batches,
            "batch_size": batch_size,
            "labels": dict(sorted(labels.items())),
            "resumed_rows": self.resumed_rows,
            "predicted": self.predicted,
            "predict_s": round(seconds, 2),
            "first_batch_s": None if self.first_batch_s is None else round(self.first_batch_s, 2),
            "short": short,
            "first_short": first_short,
        }


# -------------------------------------------------------------------------------------- the command


def _check_input(args: argparse.Namespace) -> None:
    """The output's path and the whole input (columns, every text), before any model is loaded."""
    check_output(Path(args.input), Path(args.output))
    if not Path(args.input).is_file():
        raise InputError(f"{args.input}: input file not found.")
    file_format(args.input)
    _part_rows(args.batch_size, args.part_rows)
    scan_input(args.input, args.id_column, args.text_column, args.encoding)


def _load(args: argparse.Namespace, uri: str) -> tuple[PyFuncModel, dict[str, str], TrainedLengths | None]:
    """The model, what identifies it for a resume, and how short a text it trained on."""
    loaded = load_version(uri, args.params, args.quantize)
    if args.probabilities and "probabilities" not in loaded.takes_params:
        raise PredictError(f"{loaded.uri}: {NO_PROBABILITIES}")
    identity = {
        "uri": loaded.uri,
        "files_sha256": loaded.files_sha256,
        "quantize": args.quantize or "registered",
    }
    return loaded.model, identity, loaded.lengths


@contextlib.contextmanager
def _bars(progress: bool) -> Iterator[None]:
    """MLflow's artifact download bar follows ours: off under --no-progress or without a terminal."""
    key, old = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    if not progress:
        os.environ[key] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def _cmd_predict(args: argparse.Namespace) -> int:
    progress = not args.no_progress and sys.stderr.isatty()  # a log file or a pipe gets no bar
    with _bars(progress):
        return _predict(args, progress)


def _predict(args: argparse.Namespace, progress: bool) -> int:
    t0 = time.monotonic()
    try:
        uri = args.model_uri or default_model_uri(args.version, args.params)
        check_output(Path(args.input), Path(args.output))
        with output_lock(args.output):  # the whole run: one writer per output
            _check_input(args)
            model, identity, lengths = _load(args, uri)
            load_s = time.monotonic() - t0
            stats = predict_file(
                model,
                args.input,
                args.output,
                args.id_column,
                args.text_column,
                args.batch_size,
                progress,
                encoding=args.encoding,
                probabilities=args.probabilities,
                resume=args.resume,
                part_rows=args.part_rows,
                identity=identity,
                lengths=lengths,
                lock=False,
            )
    except PredictError as exc:
        print(f"\nftpipe predict: {exc}", file=sys.stderr)
        return exc.exit_code
    print(summary(stats, uri, identity["uri"], load_s), flush=True)
    if stats["short"] and lengths is not None:
        print(
            lengths.warning(stats["short"], stats["rows"], stats["first_short"]), file=sys.stderr, flush=True
        )
    return 0


def summary(stats: PredictStats, uri: str, version_uri: str, load_s: float) -> str:
    """What the run did, in a few lines."""
    if stats["rows"] == 0:
        return f"0 rows in {stats['input']}; wrote an empty {stats['output']} (model `{uri}`)."
    labels = ", ".join(f"{k}: {v}" for k, v in stats["labels"].items()) or "none"
    done = f"{stats['predicted']} predicted now"
    if stats["resumed_rows"]:
        done += f", resumed after {stats['resumed_rows']} rows saved by an earlier run"
    rate = stats["predicted"] / stats["predict_s"] if stats["predict_s"] else 0.0
    first = stats["first_batch_s"]
    return (
        f"ftpipe predict: {stats['rows']} rows from `{stats['input']}` -> `{stats['output']}` with `{uri}` "
        f"({version_uri}), in {stats['batches']} batches of up to {stats['batch_size']} ({done}).\n"
        f"Labels: {labels}.\nModel ready after {load_s:.1f} s; predicted in {stats['predict_s']:.1f} s "
        f"(first batch {'-' if first is None else f'{first:.1f}'} s); {rate:.1f} rows/s."
    )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ftpipe predict`."""
    p = sub.add_parser(
        "predict",
        help="batch-predict labels and scores for a CSV/JSONL/Parquet file of texts",
        description="Predict a label and a score for every row of INPUT with a registered model, in "
        "batches, and write them beside the row ids (as strings) to OUTPUT (format from its extension). "
        "Results are saved in parts as they come (.OUTPUT.parts/ beside it): a stopped run, run again, "
        "continues where it stopped.",
    )
    p.add_argument("input", help="CSV/TSV, JSONL or Parquet file with an id and a text column")
    p.add_argument("output", help="where to write id, label, score (.csv, .jsonl or .parquet)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--model-uri", help="a registered model URI (default: models:/<register.model_name>@champion)"
    )
    which.add_argument(
        "--version", help="a version number or alias of the registered model, e.g. 3 or challenger"
    )
    p.add_argument(
        "--id-column", default="id", help="input column with the row ids, written as strings (default: id)"
    )
    p.add_argument("--text-column", default="text", help="input column with the texts (default: text)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows per batch (default {DEFAULT_BATCH_SIZE})",
    )
    _add_options(p)
    p.set_defaults(func=_cmd_predict)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quantize",
        choices=("none", "int8"),
        default=None,
        help="int8: dynamic int8 quantization of the model's Linear layers (CPU; faster, see bench/README.md "
        "for its agreement with fp32); none: fp32 (default: as registered, register.quantize)",
    )
    p.add_argument(
        "--probabilities",
        action="store_true",
        help="add a p_<label> column per class: its probability (a multi-label model writes them always)",
    )
    p.add_argument(
        "--encoding", default="utf-8", help="the input's text encoding, e.g. cp1252 (default: utf-8)"
    )
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue after the parts an earlier, stopped run of the same input, model and settings saved "
        "(default); --no-resume starts afresh",
    )
    p.add_argument(
        "--part-rows",
        type=int,
        default=None,
        help=f"rows per saved part, rounded up to whole batches (default {DEFAULT_PART_ROWS})",
    )
    p.add_argument("--params", default="params.yaml", help="params file giving register.model_name")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
