"""A real multi-label corpus from the Debian archive: package descriptions tagged with their debtags.

    apt-get update -o Acquire::Languages=en       # once: the English long descriptions (Translation-en)
    .venv/bin/python -m bench.debtags --out data/external/debtags.jsonl --max-rows 3000

Each row is one package of Debian 12 (bookworm) main that carries a tag of the chosen facets (`--facets`,
default `use` and `works-with`: what the program is for and what it works with): `id` the package name,
`text` its short and long description (Translation-en, joined on the Description-md5 of the Packages
index), `labels` its tags of those facets, e.g. ["use::editing", "works-with::image:raster"]. The files
are read from apt's own lists (/var/lib/apt/lists, fetched and checked against the signed Release file by
`apt-get update`), so nothing is downloaded here. `--max-rows` keeps a seeded sample, by a hash of the
package name, the same on every machine with the same lists.

Source and licence: the Debian archive's package index (debtags, collected by the Debian project) and
each package's description, written by its maintainers and distributed in Debian main (DFSG-free).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import cast

LISTS = Path("/var/lib/apt/lists")
SUITE = "deb.debian.org_debian_dists_bookworm_main"


def read_list(path: Path) -> str:
    """An apt list file as text, whatever its compression (apt's own helper decompresses it)."""
    out = subprocess.run(
        ["/usr/lib/apt/apt-helper", "cat-file", str(path)], check=True, capture_output=True, text=True
    )
    return out.stdout


def find_list(kind: str) -> Path:
    found = sorted(LISTS.glob(f"{SUITE}_{kind}*"))
    if not found:
        raise SystemExit(
            f"bench.debtags: no {LISTS}/{SUITE}_{kind}* file; run `apt-get update -o Acquire::Languages=en` "
            "on a Debian 12 machine (it fetches the package index and the English descriptions)."
        )
    return found[0]


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """Deb822 stanzas as {field: value}; continuation lines keep their newline."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def description_text(value: str) -> str:
    """A Description-en value as prose: the short line, then the long one (" ." lines are paragraph breaks)."""
    first, *rest = value.split("\n")
    paras: list[str] = []
    cur: list[str] = []
    for line in rest:
        line = line.strip()
        if line == ".":
            paras.append(" ".join(cur))
            cur = []
        else:
            cur.append(line)
    paras.append(" ".join(cur))
    return "\n\n".join(p for p in [first.strip() + ".", *paras] if p.strip())


def rows(facets: list[str]) -> list[dict[str, object]]:
    """Every package with a tag of `facets` and an English description, in package-name order."""
    descriptions = {
        f["Description-md5"]: f["Description-en"]
        for f in stanzas(read_list(find_list("i18n_Translation-en")))
        if "Description-md5" in f and "Description-en" in f
    }
    out: list[dict[str, object]] = []
    for f in stanzas(read_list(find_list("binary-amd64_Packages"))):
        tags = [t.strip() for t in f.get("Tag", "").replace("\n", " ").split(",")]
        labels = sorted({t for t in tags if t.split("::")[0] in facets})
        md5 = f.get("Description-md5")
        if labels and md5 in descriptions:
            out.append({"id": f["Package"], "text": description_text(descriptions[md5]), "labels": labels})
    return sorted(out, key=lambda r: str(r["id"]))


def sample(all_rows: list[dict[str, object]], n: int | None, seed: int) -> list[dict[str, object]]:
    """`n` rows chosen by a keyed hash of the package name (all rows when `n` is None)."""
    if n is None or n >= len(all_rows):
        return all_rows

    def key(r: dict[str, object]) -> str:
        return hashlib.sha256(f"{seed}:{r['id']}".encode()).hexdigest()

    return sorted(sorted(all_rows, key=key)[:n], key=lambda r: str(r["id"]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/external/debtags.jsonl")
    ap.add_argument("--facets", nargs="+", default=["use", "works-with"])
    ap.add_argument("--max-rows", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    kept = sample(rows(args.facets), args.max_rows, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    tmp.replace(out)
    sets = [cast(list[str], r["labels"]) for r in kept]
    n_labels = len({x for s in sets for x in s})
    mean = sum(len(s) for s in sets) / max(1, len(sets))
    print(f"{out}: {len(kept)} packages, {n_labels} labels, {mean:.2f} labels per text")


if __name__ == "__main__":
    main()
