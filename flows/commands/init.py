"""`ftpipe init NAME --csv PATH`: point the pipeline at your own CSV, under a registered model name of its own.

    ftpipe init support-tickets --csv data/external/tickets.csv
    ftpipe init support-tickets --csv ~/exports/tickets.csv --text-column body --label-column topic
    ftpipe init support-tickets --csv data/external/tickets.csv --task multi_label --label-separator "|"

Run it in the repository root (or pass --root). It edits params.yaml in place, like `dvc exp run -S`,
rewriting only the lines of the keys it changes (comments kept), and it changes only the keys that name
your data and your model: the whole `ingest` section (your CSV, its columns; the other ingest keys back
to their defaults), `label.labels` and `label.aliases` (the previous data's label filter and aliases:
back to null and {}), `label.task` (--task: single_label, the default, or multi_label, a set of labels
per text read from a cell split on --label-separator, `ingest.label_separator`), `register.model_name`
and `register.gate.min_primary` (null: no floor; a figure set for another dataset does not fit yours,
and the first version is judged against the baseline). The recipe (tokenize, finetune, evaluate, the
gate, ...) stays as params.yaml has it, which in a fresh clone is the shipped default. Without a params.yaml it writes one
from the params classes' defaults (no comments then).

Why a model name of its own: the registry compares every new version with the champion of its name, so a
model of your labels registered under the shipped `ftpipe-bbc-news` would be judged against the BBC News
champion (the register stage refuses that, naming both label sets). `init` refuses to replace a
params.yaml set up for another model name than NAME unless --force; the shipped example's name
(`ftpipe-bbc-news`) is the one it replaces without asking. A CSV outside data/external (ingest's input in
dvc.yaml, the only place DVC watches for data changes) is copied there first.

Before anything is written, the CSV is read with the ingest stage's own reader (rows, rejects, label
counts) and the new params.yaml is checked with every stage's params class (`ftpipe check`'s check), so a
refused init changes nothing. It prints what changed and what to run next.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, SupportsFloat, cast

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML

from flows.dag import RetrainError, find_root
from flows.lock import workspace_lock
from stages.check import check_params, ingest_inputs, source_problems, tracked_keys
from stages.config.clean import CleanParams
from stages.config.ingest import IngestParams
from stages.config.label import LabelParams
from stages.config.params import lookup
from stages.config.register import RegisterParams
from stages.config.sections import ALL_MODELS
from stages.core.io import atomic_file
from stages.data.words import count_words

if TYPE_CHECKING:
    from stages.data.raw import IngestReport  # pandas: imported when init reads a CSV

PARAMS_FILE = "params.yaml"
CSV_SUFFIXES = (".csv", ".tsv")  # what ingest reads as CSV (a .tsv is tab-separated)
# the shipped example's model name: the one name `init` replaces without --force
EXAMPLE_MODEL_NAME: str = RegisterParams.model_fields["model_name"].default
TASKS = ("single_label", "multi_label")  # label.task


class InitError(ValueError):
    """`ftpipe init` cannot do what was asked; the message says why and how to fix it."""


@dataclass
class InitResult:
    """What `init` did: the keys it changed, where the CSV is, what the reader found in it."""

    name: str
    source: str  # ingest.source as written (relative to the repository root)
    changes: list[tuple[str, object, object]]  # (dotted key, old, new)
    rows: int
    rejected: int
    labels: dict[str, int]
    reject_reasons: dict[str, int] = field(default_factory=dict)
    copied_from: Path | None = None
    created: bool = False  # params.yaml did not exist
    blank_labels: int = 0  # rows whose label is empty or whitespace: the label stage quarantines them
    lengths: str = ""  # the texts' lengths in words (length_line)
    min_words: tuple[int, int] | None = None  # clean.min_words lowered (from, to) to keep 99% of short texts
    baseline_margin: float = 0.0  # register.gate.baseline_margin as params.yaml now has it
    task: str = "single_label"  # label.task as written


# --------------------------------------------------------------------------- the pure core


def check_name(name: str) -> None:
    """NAME must be a valid `register.model_name` (a registered model name MLflow and ftpipe both take)."""
    try:
        RegisterParams(model_name=name)
    except ValidationError:
        raise InitError(
            f"model name {name!r} cannot be a registered model name: use letters, digits, `.`, `_` and "
            "`-`, starting with a letter or digit, at most 100 characters (`register.model_name` in "
            "params.yaml; MLflow uses it in `models:/NAME@champion` URIs). For example: "
            "`ftpipe init support-tickets --csv data/external/tickets.csv`."
        ) from None


def dataset_keys(
    name: str,
    source: str,
    text_column: str,
    label_column: str,
    id_column: str | None,
    task: str = "single_label",
    label_separator: str | None = None,
) -> dict[str, object]:
    """The params keys `init` owns (dotted key -> value): the ingest section, the label filter and task,
    the name.

    Built through the params classes, so a bad column name fails here with the class's own rule.
    """
    check_task_flags(task, label_separator)
    try:
        ingest = IngestParams(
            source=source,
            format="csv",
            text_field=text_column,
            label_field=label_column,
            id_field=id_column,
            label_separator=label_separator,
        )
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InitError(
            f"the CSV options give an invalid `ingest` section ({bad}). Name the columns with "
            "--text-column, --label-column and --id-column."
        ) from None
    label = LabelParams()
    return {
        **{f"ingest.{k}": v for k, v in ingest.model_dump(mode="json").items()},
        "label.labels": label.labels,
        "label.aliases": dict(label.aliases),
        "label.task": task,
        "register.model_name": name,
        # a floor is a figure of one dataset (0.9 was BBC News's): a new task's first version is judged
        # against the in-pipeline baseline instead (register.gate.baseline_margin), until the user sets one
        "register.gate.min_primary": None,
    }


def check_task_flags(task: str, label_separator: str | None) -> None:
    """--label-separator only with --task multi_label, and multi_label needs it (a CSV cell is one string)."""
    if task not in TASKS:
        raise InitError(f"--task {task!r}: use one of {', '.join(TASKS)}; nothing was changed.")
    if label_separator is not None and task != "multi_label":
        raise InitError(
            f"--label-separator {label_separator!r} splits a label cell into a set of labels, which only "
            "--task multi_label reads; add --task multi_label, or drop --label-separator."
        )
    if task == "multi_label" and not label_separator:
        raise InitError(
            "--task multi_label reads each text's labels from one CSV cell: name what separates them with "
            '--label-separator (e.g. --label-separator "|" for `billing|bug`); nothing was changed.'
        )


def refusal(current_name: str | None, name: str, force: bool) -> str | None:
    """Why `init NAME` must not replace a params.yaml set up for `current_name` (None: it may)."""
    if force or current_name in (None, name, EXAMPLE_MODEL_NAME):
        return None
    return (
        f"{PARAMS_FILE} is set up for registered model `{current_name}` (register.model_name), not "
        f"`{name}`: `ftpipe init {name}` would point the pipeline at another model and dataset. To change "
        f"the data of `{current_name}`, run `ftpipe init {current_name} --csv ...`; to switch to `{name}`, "
        f"commit {PARAMS_FILE} first if you want to keep `{current_name}`'s setup (git keeps it), then run "
        "the same command with --force."
    )


def _yaml() -> YAML:
    """ruamel's round-trip YAML, set up to give back an unchanged file byte for byte (null stays null)."""
    y = YAML()  # DVC's YAML library
    y.preserve_quotes = True
    y.width = 4096  # never fold a long value or comment onto a second line
    y.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


def edit_params(
    text: str | None, keys: dict[str, object], defaults: dict[str, object]
) -> tuple[str, list[tuple[str, object, object]]]:
    """Set `keys` (dotted) in the params text, comments and untouched lines kept; (new text, changes).

    Only keys whose value differs are written. `text` None: start from `defaults` ({section: {key: value}}).
    """
    y = _yaml()
    data = y.load(text) if text is not None else None
    if data is None:
        data = y.load(_dump(y, defaults))
    if not isinstance(data, dict):
        raise InitError(f"{PARAMS_FILE}: the top level must be a mapping of sections (`ingest:`, ...).")
    changes = []
    for dotted, value in keys.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        old = node.get(leaf)
        if leaf not in node or old != value:
            node[leaf] = value
            changes.append((dotted, old, value))
    return _dump(y, data), changes


def _dump(y: YAML, data: object) -> str:
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def placement(csv_path: Path, root: Path, inputs: list[str]) -> tuple[Path, str]:
    """Where the CSV must be for DVC to see it change, and `ingest.source` for it (posix, from the root).

    Inside one of ingest's data inputs (`inputs`, from dvc.yaml): where it is. Elsewhere: copied to the
    first input under its own name.
    """
    csv_path, root = csv_path.resolve(), root.resolve()
    for inp in inputs:
        if csv_path.is_relative_to((root / inp).resolve()):
            return csv_path, csv_path.relative_to(root).as_posix()
    if not inputs:
        inside = csv_path.is_relative_to(root)
        return csv_path, csv_path.relative_to(root).as_posix() if inside else str(csv_path)
    dest = root / inputs[0] / csv_path.name
    return dest, dest.relative_to(root).as_posix()


# --------------------------------------------------------------------------- the command


def _defaults() -> dict[str, object]:
    """Every section at its params class's defaults: the params.yaml of a checkout that has none."""
    return {s: m().model_dump(mode="json") for s, m in ALL_MODELS.items()}


def _read_csv(csv_path: Path, keys: dict[str, object]) -> tuple[IngestReport, list[int]]:
    """The ingest stage's report on the CSV, read with its own reader and the new `ingest` keys, and the
    number of words of each row's text (as clean counts them)."""
    from stages.data.raw import IngestError, ingest  # pandas: when init reads a CSV, not for every command

    ingest_keys = {k.removeprefix("ingest."): v for k, v in keys.items() if k.startswith("ingest.")}
    try:
        params = IngestParams.model_validate({**ingest_keys, "source": str(csv_path)})
        rows, _, report = ingest(params, str(keys.get("label.task", "single_label")))
    except IngestError as exc:
        raise InitError(
            f"{exc} With `ftpipe init`, name the columns with --text-column, --label-column and "
            "--id-column; nothing was changed."
        ) from None
    return report, [count_words(str(t)) for t in rows["text"]]


KEEP_SHARE = 0.99  # init lowers clean.min_words until it keeps this share of the rows


def short_text_floor(words: list[int], min_words: int) -> int:
    """`min_words`, or the largest floor below it that keeps KEEP_SHARE of the rows when more would go."""
    n = len(words)
    if not n:
        return min_words
    floor = min_words
    while floor > 1 and sum(w < floor for w in words) > (1 - KEEP_SHARE) * n:
        floor -= 1
    return floor


def length_line(words: list[int]) -> str:
    """The texts' lengths in words: median, the 1st and 99th percentiles, the extremes."""
    if not words:
        return "text lengths: no rows"
    s = sorted(words)

    def at(q: float) -> int:
        return s[min(len(s) - 1, int(q * len(s)))]

    return (
        f"text lengths: median {at(0.5)} words (shortest {s[0]}, 1st percentile {at(0.01)}, 99th "
        f"percentile {at(0.99)}, longest {s[-1]})"
    )


def label_problem(labels: dict[str, int], label_column: str, csv: Path) -> str | None:
    """Why the label column cannot train a classifier (all blank, or one class); None when it can."""
    named = {k.strip().lower() for k, n in labels.items() if k.strip() and n}
    if not named:
        return (
            f"--label-column `{label_column}`: every row of {csv} has an empty label. Name the column that "
            "holds the labels with --label-column; nothing was changed."
        )
    if len(named) == 1:
        return (
            f"--label-column `{label_column}`: every labelled row of {csv} has the one class "
            f"`{next(iter(named))}`; a classifier needs at least two. Name the column that holds the labels "
            "with --label-column, or add rows of the other classes; nothing was changed."
        )
    return None


def _problems(root: Path, text: str) -> list[str]:
    """The problems `ftpipe check` would find in `text` as ROOT's params.yaml: every stage's params class."""
    data = yaml.safe_load(text)
    dvc_yaml = root / "dvc.yaml"
    return check_params(data, tracked_keys(dvc_yaml), ALL_MODELS) + source_problems(
        data, root, ingest_inputs(dvc_yaml)
    )


def init_project(
    root: Path,
    name: str,
    csv: Path,
    text_column: str = "text",
    label_column: str = "label",
    id_column: str | None = None,
    force: bool = False,
    task: str = "single_label",
    label_separator: str | None = None,
) -> InitResult:
    """Point ROOT's params.yaml at `csv` under registered model `name`; all or nothing."""
    check_name(name)
    _check_csv_path(csv, name)
    params_path = root / PARAMS_FILE
    with workspace_lock(root, command=f"ftpipe init {name}"):  # no run rewrites params.yaml meanwhile
        text = params_path.read_text(encoding="utf-8") if params_path.is_file() else None
        current = _current_name(text)
        why = refusal(current, name, force)
        if why:
            raise InitError(why)
        dest, source = placement(csv, root, ingest_inputs(root / "dvc.yaml"))
        keys = dataset_keys(name, source, text_column, label_column, id_column, task, label_separator)
        report, words = _read_csv(csv, keys)
        if why := label_problem(report["labels"], label_column, csv):
            raise InitError(why)
        current_min = _current_min_words(text)
        floor = short_text_floor(words, current_min)
        if floor < current_min:
            keys["clean.min_words"] = floor
        new_text, changes = edit_params(text, keys, _defaults() if text is None else {})
        problems = _problems(root, new_text)
        if problems:
            raise InitError(
                f"the new {PARAMS_FILE} would not pass `ftpipe check`: {'; '.join(problems)}. Nothing was "
                "changed; fix the options (or those keys in params.yaml) and run again."
            )
        copied = _copy_csv(csv, dest, root, force)
        if text != new_text:
            with atomic_file(params_path) as fh:
                fh.write(new_text)
    return InitResult(
        name=name,
        source=source,
        changes=changes,
        rows=report["rows"],
        rejected=report["rejected"],
        labels={k: n for k, n in report["labels"].items() if k.strip()},
        blank_labels=sum(n for k, n in report["labels"].items() if not k.strip()),
        reject_reasons=report["reject_reasons"],
        copied_from=copied,
        created=text is None,
        baseline_margin=_baseline_margin(new_text),
        lengths=length_line(words),
        min_words=(current_min, floor) if floor < current_min else None,
        task=task,
    )


def _baseline_margin(text: str) -> float:
    """register.gate.baseline_margin of the params text (the class's default where it is not set)."""
    value = lookup(yaml.safe_load(text), "register.gate.baseline_margin")
    default: float = RegisterParams().gate.baseline_margin
    return default if value is None else float(cast("SupportsFloat | str", value))  # checked by `_problems`


def _check_csv_path(csv: Path, name: str) -> None:
    if not csv.is_file():
        raise InitError(
            f"--csv {csv}: no such file. Give the path of your CSV (a header row, then one row each)."
        )
    if csv.suffix.lower() not in CSV_SUFFIXES:
        raise InitError(
            f"--csv {csv}: `init` takes a .csv or .tsv file (with a header row). For JSONL, Parquet or a "
            f"folder, run `ftpipe init {name} --csv` on a CSV export, or set `ingest.source` in "
            f"{PARAMS_FILE} by hand (docs/data-formats.md)."
        )


def _copy_csv(csv: Path, dest: Path, root: Path, force: bool) -> Path | None:
    """Copy the CSV to `dest` (under data/external) unless it is there; the path copied from, or None."""
    if dest.resolve() == csv.resolve():
        return None
    if dest.exists() and dest.read_bytes() != csv.read_bytes() and not force:
        raise InitError(
            f"{dest.relative_to(root)} exists and differs from {csv}: `init` copies your CSV there "
            "(ingest's input in dvc.yaml, the folder DVC watches). Rename your file, or pass --force to "
            "replace it."
        )
    with atomic_file(dest, "wb") as fh, open(csv, "rb") as src:
        shutil.copyfileobj(src, fh)
    return csv


def _current_min_words(text: str | None) -> int:
    """clean.min_words of the params text, else the params class's default."""
    value = lookup(yaml.safe_load(text), "clean.min_words") if text else None
    return value if isinstance(value, int) and not isinstance(value, bool) else CleanParams().min_words


def _current_name(text: str | None) -> str | None:
    """register.model_name of the params text (None: no file, or no name set: the default applies)."""
    if text is None:
        return None
    try:
        name = lookup(yaml.safe_load(text), "register.model_name")
    except yaml.YAMLError as exc:
        raise InitError(f"{PARAMS_FILE} is not valid YAML ({exc}); fix it first.") from None
    return None if name is None else str(name)


def render(result: InitResult) -> str:
    """What `init` tells the user: the data found, the keys changed, the commands to run next (pure)."""
    labels = ", ".join(f"{k} {v}" for k, v in result.labels.items())
    lines = [f"ftpipe init: {PARAMS_FILE} now trains `{result.name}` on {result.source}"]
    if result.copied_from is not None:
        lines.append(
            f"  copied {result.copied_from} to {result.source} (ingest's input in dvc.yaml: DVC reruns the "
            f"pipeline when it changes; for a large file `dvc add {result.source}` rather than git)"
        )
    rejected = ""
    if result.rejected:
        reasons = ", ".join(f"{k} ({v})" for k, v in result.reject_reasons.items())
        rejected = f", {result.rejected} rejected: {reasons}"
    lines.append(f"  {result.rows} rows{rejected}; {len(result.labels)} labels: {labels}")
    if result.task == "multi_label":
        lines.append("  label sets (label.task multi_label): a text counts once under each of its labels")
    if result.lengths:
        lines.append(f"  {result.lengths}")
    if result.min_words is not None:
        before, after = result.min_words
        lines.append(
            f"  short texts: clean.min_words {before} -> {after}, so that cleaning keeps at least "
            f"{KEEP_SHARE:.0%} of the rows (set it back in params.yaml to drop shorter texts)"
        )
    if result.blank_labels:
        lines.append(
            f"  {result.blank_labels} rows with a blank label: the label stage will quarantine them "
            "(reports/label_quarantine.jsonl)"
        )
    if result.created:
        lines.append(f"  {PARAMS_FILE} was missing: written from the params classes' defaults")
    if result.changes:
        width = max(len(k) for k, _, _ in result.changes)
        lines.append("  changed (the rest of params.yaml, comments included, is as it was):")
        lines += [f"    {k.ljust(width)}  {_show(old)} -> {_show(new)}" for k, old, new in result.changes]
    else:
        lines.append(f"  {PARAMS_FILE} already said so: nothing changed")
    lines.append(
        f"  the gate for the first version of `{result.name}`: lead the TF-IDF baseline evaluate trains "
        f"beside it by {result.baseline_margin:+.4f} (register.gate.baseline_margin) and not be significantly "
        "worse on the same test rows (McNemar); no absolute floor (register.gate.min_primary: null): a floor "
        "is a figure of one dataset, set one if your task has a known bar"
    )
    model = f"models:/{result.name}@champion"
    lines += [
        "",
        "Next, from this folder:",
        "  ftpipe run                              # the DAG (dvc.yaml): check, ingest, ..., register; a summary",
        f"  ftpipe history --versions               # the versions of `{result.name}` and their aliases",
        f"  ftpipe predict texts.csv preds.csv      # labels for a CSV of id,text from {model}",
    ]
    return "\n".join(lines)


def _show(value: object) -> str:
    return "null" if value is None else str(value)


def _cmd_init(args: argparse.Namespace) -> int:
    try:
        root = find_root(args.root)
        result = init_project(
            root,
            args.name,
            Path(args.csv).expanduser(),
            args.text_column,
            args.label_column,
            args.id_column,
            args.force,
            args.task,
            args.label_separator,
        )
    except (InitError, RetrainError) as exc:
        print(f"ftpipe init: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InitError) else 1
    print(render(result))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ftpipe init`."""
    p = sub.add_parser(
        "init",
        help="point params.yaml at your own CSV, under a registered model name of its own",
        description="Set params.yaml up for your own data: the `ingest` section reads your CSV, "
        "`register.model_name` is NAME (the registry compares new versions only with NAME's champion), "
        "everything else stays as it is, comments included. The CSV is checked with the ingest stage's "
        "reader and the result with every stage's params class before anything is written.",
    )
    p.add_argument("name", metavar="NAME", help="the registered model name (register.model_name)")
    p.add_argument(
        "--csv",
        required=True,
        metavar="PATH",
        help="your CSV (or TSV) with a header row; copied under data/external/ if it is elsewhere",
    )
    p.add_argument("--text-column", default="text", help="the column holding the texts (default: text)")
    p.add_argument("--label-column", default="label", help="the column holding the labels (default: label)")
    p.add_argument(
        "--id-column",
        default=None,
        help="a column of stable row ids (default: none; rows are named file:line)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a params.yaml set up for another model name, or a different file of the same name "
        "under data/external/",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default="single_label",
        help="label.task: one label per text (default), or multi_label, a set of labels per text",
    )
    p.add_argument(
        "--label-separator",
        default=None,
        metavar="SEP",
        help='with --task multi_label: what separates the labels in a label cell, e.g. "|" '
        "(ingest.label_separator)",
    )
    p.add_argument("--root", default=".", help="the repository (default: the working directory)")
    p.set_defaults(func=_cmd_init)
