"""Integrity manifests: the sha256 of every file of a model, checked before any of its code runs.

    m = tree_manifest("models/model")                 # {"config.json": "9f2c...", "model.safetensors": ...}
    write_folder_manifest("models/model")             # finetune: models/model/MANIFEST.sha256
    verify_folder("models/model", fix="rerun `dvc repro finetune`")   # evaluate: ManifestError on a change
    check(expected, found, what="...", fix="...")     # any two manifests (the registry's, the served model's)

`MANIFEST.sha256` is in `sha256sum` format, so `cd models/model && sha256sum -c MANIFEST.sha256` checks it
by hand. A manifest maps each file's path (POSIX, relative to the folder) to its sha256; a verification
fails on a changed file, an added file (a `.py` dropped into the folder is exactly that) and a missing
one, and its message names each file with the expected and found hash and says what to do.

Pure: hashlib and the file system, nothing else. The served model (stages/serving/textclf.py) carries this
file as registered code and loads it by path, so it must stand alone: standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

MANIFEST_FILE = "MANIFEST.sha256"
FORMAT = 1
_SHOWN = 10  # mismatches listed in a message; the rest are counted


class ManifestError(ValueError):
    """Files that do not match their manifest; the message names each one and says what to do."""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_manifest(root: str | Path, ignore: Iterable[str] = ()) -> dict[str, str]:
    """`{relative POSIX path: sha256}` of every file under `root` (hidden ones too), less `ignore`d paths."""
    root = Path(root)
    skip = set(ignore)
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            out[rel] = "not-a-regular-file"  # never matches a recorded hash: a link is refused, not followed
        elif path.is_file():
            out[rel] = file_sha256(path)
    return out


def under(manifest: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The entries below folder `prefix` (`"code"`), with the prefix taken off their paths."""
    head = prefix.rstrip("/") + "/"
    return {k[len(head) :]: v for k, v in manifest.items() if k.startswith(head)}


def mismatches(expected: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """One line per file that differs: changed (expected vs found hash), added, or missing."""
    lines = []
    for path in sorted(set(expected) | set(found)):
        want, have = expected.get(path), found.get(path)
        if want == have:
            continue
        if want is None:
            lines.append(f"`{path}`: not in the manifest (an added file), sha256 {have}")
        elif have is None:
            lines.append(f"`{path}`: in the manifest but missing (expected sha256 {want})")
        else:
            lines.append(f"`{path}`: expected sha256 {want}, found {have}")
    return lines


def check(expected: Mapping[str, str], found: Mapping[str, str], what: str, fix: str) -> None:
    """Raise ManifestError when `found` differs from `expected` in any file, naming each one."""
    lines = mismatches(expected, found)
    if not lines:
        return
    shown = "\n".join(f"- {line}" for line in lines[:_SHOWN])
    more = f"\n- ... and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else ""
    raise ManifestError(
        f"{what}: {len(lines)} file(s) differ from the manifest recorded when it was made, so none of it "
        f"was loaded and none of its code ran:\n{shown}{more}\nThe files were changed after the manifest "
        f"was written (tampering, a partial copy or disk damage). {fix}"
    )


def format_sha256sum(manifest: Mapping[str, str]) -> str:
    """`sha256sum` lines (`<hash>  <path>`), sorted by path."""
    return "".join(f"{h}  {p}\n" for p, h in sorted(manifest.items()))


def parse_sha256sum(text: str, source: str) -> dict[str, str]:
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64 or not path:
            raise ManifestError(
                f"{source} line {n}: not a `sha256sum` line (`<64 hex digits>  <path>`): {line[:120]!r}. "
                "The manifest itself was damaged; regenerate the folder (rerun the stage that wrote it)."
            )
        out[path] = digest
    return out


def write_folder_manifest(folder: str | Path) -> Path:
    """Write `folder/MANIFEST.sha256` covering every other file of `folder`; return its path."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    path.write_text(format_sha256sum(tree_manifest(folder, ignore=[MANIFEST_FILE])), encoding="utf-8")
    return path


def verify_folder(folder: str | Path, fix: str) -> dict[str, str]:
    """Check `folder` against its own MANIFEST.sha256 (ManifestError when missing or different)."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(
            f"{folder}: no {MANIFEST_FILE}, so its files cannot be checked and none of it is loaded. The "
            f"folder was not written by this version of ftpipe's finetune stage; {fix}"
        )
    expected = parse_sha256sum(path.read_text(encoding="utf-8"), str(path))
    found = tree_manifest(folder, ignore=[MANIFEST_FILE])
    check(expected, found, str(folder), fix)
    return expected


def dumps(manifest: Mapping[str, str]) -> str:
    """The registry's form: compact JSON `{"format": 1, "files": {path: sha256}}` with sorted paths."""
    return json.dumps({"format": FORMAT, "files": dict(sorted(manifest.items()))}, separators=(",", ":"))


def loads(text: str, source: str) -> dict[str, str]:
    try:
        doc = json.loads(text)
        if doc.get("format") != FORMAT or not isinstance(doc.get("files"), dict):
            raise ValueError(f"format {doc.get('format')!r}")
    except (ValueError, AttributeError) as exc:
        raise ManifestError(
            f"{source}: the recorded manifest cannot be read ({exc}); this ftpipe reads format {FORMAT}. "
            "Register the model again with this version of ftpipe."
        ) from None
    return {str(k): str(v) for k, v in doc["files"].items()}
