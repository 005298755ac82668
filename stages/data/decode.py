"""Bytes to text for ingest: the primary encoding, then the fallbacks; a BOM dropped; a binary file refused.

    text, used = decode(raw, "utf-8", ["cp1252"])  # (None, None) when no encoding fits

A CSV file is decoded whole with errors="surrogateescape", so only a row holding bytes the primary
encoding cannot decode is re-decoded (`redecode_cells`), on its own raw bytes.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from stages.config.ingest import IngestParams
from stages.data.sources import IngestError

SURROGATE = re.compile("[\udc80-\udcff]")  # bytes kept by errors="surrogateescape"
BINARY_SIGNATURES = (b"PAR1", b"\x1f\x8b", b"PK\x03\x04")  # Parquet, gzip, zip
SNIFF_BYTES = 4096
MAX_NUL_SHARE = 0.10  # text has next to none; one NUL in one row must not condemn the whole file


def decode(data: bytes, encoding: str, fallbacks: list[str]) -> tuple[str | None, str | None]:
    """Decode bytes with the primary encoding, then each fallback; return (text, encoding used)."""
    for enc in [encoding, *fallbacks]:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return None, None


def redecode_cells(cells: list[str], p: IngestParams) -> tuple[list[str] | None, bool]:
    """Re-decode a row read with surrogateescape; return (cells, used a fallback), (None, False) if none fits.

    Only a row holding bytes the primary encoding cannot decode tries the fallbacks, on its own raw
    bytes, so one cp1252 row no longer turns every "Café" of a UTF-8 file into "CafÃ©".
    """
    if not any(SURROGATE.search(c) for c in cells):
        return cells, False
    raw = [c.encode(p.encoding, errors="surrogateescape") for c in cells]
    for enc in p.fallback_encodings:
        try:
            return [b.decode(enc) for b in raw], True
        except UnicodeDecodeError:
            continue
    return None, False


def strip_bom(data: bytes) -> bytes:
    """A UTF-8 BOM would stick to the first header name or break a JSON line (files joined by `cat`)."""
    return data.removeprefix(codecs.BOM_UTF8)


def check_text_file(path: Path, data: bytes, fmt: str) -> None:
    """Refuse a binary file, told by its signature or a high share of NULs: one NUL is one row's problem."""
    head = data[:SNIFF_BYTES]
    nul_share = head.count(0) / max(len(head), 1)
    if head.startswith(BINARY_SIGNATURES) or nul_share > MAX_NUL_SHARE:
        raise IngestError(
            f"{path}: the extension says {fmt.upper()} but the file is binary (a Parquet/gzip/zip "
            f"signature at the start, or {nul_share:.0%} NUL bytes in its first 4 KiB; UTF-16 text looks "
            "like this too: save it as UTF-8). Fix the extension or `ingest.format`."
        )
