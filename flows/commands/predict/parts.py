"""predict's output side: the output written in parts as it goes, a manifest to resume from, the join.

    work = PartsFolder.open(output, key, resume=True)   # `.<output name>.parts/` beside the output
    work.add_part(frame)                                 # part-000000.<ext>, then the manifest, each atomic
    work.join()                                          # parts -> output (tmp + rename), the folder removed

Every file here is written to a temporary sibling and renamed (`write_file`), so a part or the manifest
is whole or absent whatever stops the run (Ctrl-C, SIGKILL, a full disk). The manifest names what the
parts were made from (`key`: the input's fingerprint, the concrete model version and its files' hash,
the columns, batch and part sizes, ...): a rerun with the same key continues after the last part it
lists, any other starts fresh. Part boundaries fall every `part_rows` rows (a multiple of the batch
size), so an interrupted run, resumed, feeds the model the same batches and writes the same bytes as an
uninterrupted one. The join streams: CSV and JSONL parts are copied, Parquet parts are read one at a
time, each becoming one row group.

Each part's manifest entry records the sha256 of its bytes and of the key that made it, and the join
first checks that the manifest on disk is still this run's and every part still the one it wrote: parts
of another writer (an older ftpipe without the output lock, a hand copy) fail the run, and nothing is
written (flows/commands/predict/lock.py keeps a second `ftpipe predict` out in the first place).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flows.commands.predict.inputs import FORMATS, InputError, PredictError, file_format
from stages.core.io import DISK_FULL_ERRNOS, DiskFull

if TYPE_CHECKING:  # imported where used: `ftpipe --help`, `check` and the rest do not pay for them
    import pandas as pd
    import pyarrow as pa

MANIFEST = "manifest.json"
SUFFIX = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
# what an output can be: the input formats less .tsv (parts are written comma-separated)
OUTPUT_FORMATS = {ext: fmt for ext, fmt in FORMATS.items() if ext != ".tsv"}


def write_file(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """`write(fh)` into a temporary sibling of `path`, then renamed onto it: whole or absent.

    Every part, manifest and output goes through here; no space left raises stages/core/io.py's `DiskFull` for `path`.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFull(path, exc) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def schema(columns: list[str]) -> pa.Schema:
    """The output's Arrow schema: id and label strings, score and every `p_<label>` float64."""
    import pyarrow as pa

    return pa.schema([(c, pa.string() if i < 2 else pa.float64()) for i, c in enumerate(columns)])


def encode(frame: pd.DataFrame, fmt: str) -> Callable[[IO[bytes]], None]:
    """What writes `frame` (id, label, score[, p_...]) as a part in `fmt`: CSV without its header."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from stages.core.csvsafe import escape_frame

    def write(fh: IO[bytes]) -> None:
        if fmt == "csv":  # no formulas in a spreadsheet (stages/core/csvsafe.py)
            fh.write(escape_frame(frame).to_csv(header=False, index=False).encode("utf-8"))
        elif fmt == "jsonl":
            for rec in frame.to_dict(orient="records"):
                fh.write((json.dumps(rec, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
        else:
            table = pa.Table.from_pandas(frame, schema=schema(list(frame.columns)), preserve_index=False)
            pq.write_table(table.replace_schema_metadata(None), fh)

    return write


@dataclass
class PartsFolder:
    """The parts folder of one output (`.<output name>.parts/`): its manifest (`key`, `parts`) and where it
    stands."""

    output: Path
    key: dict[str, object]  # the input's fingerprint, the model, the output format and the Options
    parts: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the output's, once a part is written
    note: str = ""  # what happened to an earlier run's parts, said once at the start

    @property
    def folder(self) -> Path:
        return self.output.with_name(f".{self.output.name}.parts")

    @property
    def rows_done(self) -> int:
        return sum(int(p["rows"]) for p in self.parts)

    @property
    def bytes_done(self) -> int:
        return sum(int(p["bytes"]) for p in self.parts)

    @classmethod
    def open(cls, output: Path, key: dict[str, object], resume: bool = True) -> PartsFolder:
        """The work for `output`: an earlier run's parts when `resume` and its key is `key`, else fresh."""
        work = cls(output, key)
        old = work._read_manifest()
        if old is not None and resume and old.get("key") == key:
            work.parts = work._intact(old.get("parts", []))
            work.columns = list(old.get("columns", [])) if work.parts else []
            work.note = f"resumed after {work.rows_done} rows ({len(work.parts)} parts in {work.folder})"
            if work.parts:  # the intact parts alone, each with its digests (a manifest of an older ftpipe)
                work._write_manifest()
        elif old is not None:
            why = "--no-resume" if not resume else f"it was made from other {_differs(old.get('key'), key)}"
            work.note = f"started fresh: the parts in {work.folder} were not used ({why})"
        if work.folder.exists() and not work.parts:
            shutil.rmtree(work.folder)
        work.folder.mkdir(parents=True, exist_ok=True)
        return work

    def _read_manifest(self) -> dict[str, Any] | None:
        try:
            found = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    @property
    def key_sha256(self) -> str:
        """What each part records of the key that made it."""
        return hashlib.sha256(json.dumps(self.key, sort_keys=True).encode("utf-8")).hexdigest()

    def _intact(self, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The listed parts up to the first one missing, of another size or other bytes (digests are
        added to the entries of a manifest that has none)."""
        kept = []
        for p in parts:
            f = self.folder / str(p.get("name"))
            if not f.is_file() or f.stat().st_size != p.get("bytes"):
                break
            digest = _sha256(f)
            if p.get("sha256", digest) != digest or p.get("key_sha256", self.key_sha256) != self.key_sha256:
                break
            kept.append({**p, "sha256": digest, "key_sha256": self.key_sha256})
        return kept

    def add_part(
        self,
        frame: pd.DataFrame,
        labels: dict[str, int],
        columns: list[str],
        short: int = 0,
        first_short: str = "",
    ) -> None:
        """Write `frame` as the next part, then the manifest that lists it (with its digests, and how many
        of its texts are shorter than any the model trained on, and the first of them)."""
        fmt = str(self.key["output_format"])  # csv | jsonl | parquet
        name = f"part-{len(self.parts):06d}{SUFFIX[fmt]}"
        write_file(self.folder / name, encode(frame, fmt))
        size = (self.folder / name).stat().st_size
        entry = {"name": name, "rows": len(frame), "bytes": size, "labels": labels, "short": short}
        entry |= {"first_short": first_short} if short else {}
        entry |= {"sha256": _sha256(self.folder / name), "key_sha256": self.key_sha256}
        self.parts.append(entry)
        self.columns = columns
        self._write_manifest()

    def wrote(self, exc: OSError) -> bool:
        """Whether `exc` came from writing a part, the manifest or the output (not from the model)."""
        if exc.errno in DISK_FULL_ERRNOS:
            return True
        return bool(exc.filename) and Path(exc.filename).parent in (self.folder, self.output.parent)

    def _write_manifest(self) -> None:
        body = {"key": self.key, "columns": self.columns, "rows_done": self.rows_done, "parts": self.parts}
        text = json.dumps(body, indent=1, sort_keys=True).encode("utf-8")
        write_file(self.folder / MANIFEST, lambda fh: _put(fh, text))

    def verify(self) -> None:
        """That the manifest on disk and every part are still the ones this run wrote; PredictError
        (exit 1) naming the first that is not."""
        found = self._read_manifest()
        if found is None and not self.parts:
            return  # nothing written (an empty input): nothing of this run's to check
        if found is None or found.get("key") != self.key or found.get("parts") != self.parts:
            self._foreign(MANIFEST, "lists other parts or another model, input or settings")
        for p in self.parts:
            f = self.folder / p["name"]
            if p.get("key_sha256") != self.key_sha256:
                self._foreign(p["name"], "was made by another model, input or settings")
            if not f.is_file() or _sha256(f) != p.get("sha256"):
                self._foreign(p["name"], "is not the part this run wrote (its sha256 differs, or it is gone)")

    def _foreign(self, name: str, why: str) -> None:
        raise PredictError(
            f"{self.folder / name} {why}: another writer used {self.output} meanwhile. Nothing was "
            f"written to {self.output}; run the command again with --no-resume, one run per output."
        )

    def join(self, columns: list[str]) -> None:
        """The parts, verified to be this run's, in order, as the output (tmp + rename); then the work
        folder goes."""
        self.verify()
        fmt = file_format(self.output, OUTPUT_FORMATS)
        write_file(
            self.output, self._join_csv_jsonl(columns) if fmt != "parquet" else self._join_parquet(columns)
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    def _join_csv_jsonl(self, columns: list[str]) -> Callable[[IO[bytes]], None]:
        def write(fh: IO[bytes]) -> None:
            import pandas as pd

            if self.key["output_format"] == "csv":
                fh.write(pd.DataFrame(columns=columns).to_csv(index=False).encode("utf-8"))
            for p in self.parts:
                with open(self.folder / p["name"], "rb") as part:
                    shutil.copyfileobj(part, fh, 1 << 20)

        return write

    def _join_parquet(self, columns: list[str]) -> Callable[[IO[bytes]], None]:
        def write(fh: IO[bytes]) -> None:
            import pyarrow.parquet as pq

            first = pq.read_schema(self.folder / self.parts[0]["name"]) if self.parts else schema(columns)
            with pq.ParquetWriter(fh, first) as writer:
                for p in self.parts:  # one part in memory at a time
                    writer.write_table(pq.read_table(self.folder / p["name"]))
                if not self.parts:
                    writer.write_table(first.empty_table())

        return write


def _put(fh: IO[bytes], data: bytes) -> None:
    fh.write(data)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _differs(old: object, new: dict[str, object]) -> str:
    """Which keys of the manifest differ, for the message."""
    if not isinstance(old, dict):
        return "settings (an unreadable manifest)"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(keys) or "settings"


def write_failed_message(exc: OSError, work: PartsFolder, rows_total: int | None) -> str:
    """One line for a part or output that could not be written: the path, why, and that a rerun resumes."""
    path = Path(exc.filename) if exc.filename else work.folder
    if exc.errno in DISK_FULL_ERRNOS:
        return no_space_message(path, work, rows_total)
    return (
        f"cannot write {path}: {exc.strerror or exc}. Fix that (or write the output elsewhere), then run the "
        f"same command again: it resumes after the {work.rows_done} rows saved in {work.folder}."
    )


def no_space_message(path: Path, work: PartsFolder, rows_total: int | None) -> str:
    """One line: the path, the free space there, roughly what the rest needs, and that a rerun resumes."""
    usage = shutil.disk_usage(path.parent if path.parent.exists() else work.output.parent)
    per_row = work.bytes_done / work.rows_done if work.rows_done else None
    if per_row is not None and rows_total is not None:
        rest = per_row * max(0, rows_total - work.rows_done)
        need = (
            f"about {_mb(rest + per_row * rows_total)} more (the rest of the parts, then the joined output)"
        )
    else:
        need = "more, roughly twice the output's size (its parts, then the joined output)"
    return (
        f"no space left on device writing {path}: {_mb(usage.free)} free of {_mb(usage.total)} there, "
        f"and it needs {need}. Free some space (or write the output elsewhere), then run the same command "
        f"again: it resumes after the {work.rows_done} rows saved in {work.folder}."
    )


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def check_output(input_path: Path, output: Path) -> str:
    """The output's format, once it is known the output neither is the input nor lies in a missing folder."""
    fmt = file_format(output, OUTPUT_FORMATS)
    if output.resolve() == input_path.resolve():
        raise InputError(f"{output}: the output would overwrite the input; choose another path.")
    if not output.parent.is_dir():
        raise InputError(f"{output}: its folder {output.parent} does not exist; create it first.")
    return fmt
