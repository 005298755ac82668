"""The docs stay short, linked, current and dated: README.md, docs/*.md and bench/README.md.

    .venv/bin/pytest tests/test_docs.py -q

The rules (docs/development.md, "Writing the docs"): the README is at most 220 lines and links every
docs page; every relative link points at a file that exists; no changelog prose ("used to", "no longer",
...: the docs say what the code does, git says how it changed); every measured figure (a number with an
abbreviated unit of time, speed or memory, or a speed-up such as 1.51x) has the date it was measured
and the CPU in its paragraph. Code blocks and inline code are not prose: they are skipped, and so is a
figure after a comparison (`< 5 s` is a target, not a measurement).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_README_LINES = 220


def doc_files() -> list[Path]:
    """README.md, every docs/*.md page and bench/README.md."""
    return [README, *sorted(DOCS.glob("*.md")), REPO / "bench" / "README.md"]


# --- reading markdown -------------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)


def prose_blocks(text: str) -> list[tuple[int, str]]:
    """Paragraphs of prose as (first line number, text): split at blank lines and headings, without
    fenced or indented code blocks and with inline code spans blanked out."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    in_fence = False

    def close() -> None:
        nonlocal current
        if current and not all(line.startswith(("    ", "\t")) for line in current):  # indented code
            blocks.append((start, current))
        current = []

    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            close()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if not line.strip() or line.startswith("#"):
            close()
            if line.startswith("#"):
                blocks.append((number, [line]))
            continue
        if not current:
            start = number
        current.append(line)
    close()
    return [(first, INLINE_CODE.sub(" ", "\n".join(lines))) for first, lines in blocks]


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)


def relative_links(text: str) -> list[str]:
    """Targets of the markdown links in prose that point into the repository (no URL, no bare anchor),
    without their `#anchor`."""
    targets: list[str] = []
    for _, block in prose_blocks(text):
        for target in LINK.findall(block) + REFERENCE.findall(block):
            if not EXTERNAL.match(target):
                targets.append(target.split("#", 1)[0])
    return targets


def broken_links(path: Path) -> list[str]:
    """The relative links of a markdown file whose target does not exist, as `target (line N)`."""
    missing = []
    for target in relative_links(path.read_text(encoding="utf-8")):
        if not (path.parent / target).exists():
            missing.append(target)
    return missing


# --- changelog prose --------------------------------------------------------------------------------

# Phrases that narrate a change instead of describing the code. "used to" after a form of "be" is the
# passive ("is used to split"); "Now" opening a sentence is a step in a walk-through, a lowercase "now"
# inside one ("X now does Y") is a changelog.
CHANGELOG = [
    re.compile(r"(?<!\bis )(?<!\bare )(?<!\bbe )(?<!\bbeen )(?<!\bwas )(?<!\bwere )\bused to\b", re.I),
    re.compile(r"\bno longer\b", re.I),
    re.compile(r"\bthe old\b", re.I),
    re.compile(r"\bpreviously\b", re.I),
    re.compile(r"\bformerly\b", re.I),
    re.compile(r"\bnow\b"),
    re.compile(r"(^|[.(:;]\s*)before[,:]", re.I | re.MULTILINE),
]


def changelog_phrases(text: str) -> list[str]:
    """Each changelog phrase found in the prose of `text`, as `line N: phrase`."""
    found = []
    for first, block in prose_blocks(text):
        for pattern in CHANGELOG:
            for match in pattern.finditer(block):
                line = first + block.count("\n", 0, match.start())
                found.append(f"line {line}: {match.group(0).strip()!r}")
    return found


# --- measured figures -------------------------------------------------------------------------------

UNITS = r"ms|s|min|samples/s|texts/s|windows/s|rows/s|GFLOP/s|TFLOP|GiB|MiB"
FIGURE = re.compile(rf"(?<![\w.,])(?:\d[\d,]*(?:\.\d+)?[ \u00a0]?(?:{UNITS})(?![\w/])|\d+\.\d+x\b)")
COMPARISON = re.compile(r"(<=?|>=?|≤|≥)\s*$")
DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
CPU = re.compile(r"AMD|Intel|EPYC|Xeon|Apple M\d|Graviton|NVIDIA|CPU not recorded")


def undated_figures(text: str) -> list[str]:
    """Each measured figure whose paragraph lacks a date or a CPU, as `line N: figure (missing ...)`."""
    found = []
    for first, block in prose_blocks(text):
        missing = [name for name, rule in (("date", DATE), ("CPU", CPU)) if not rule.search(block)]
        if not missing:
            continue
        for match in FIGURE.finditer(block):
            if COMPARISON.search(block[max(0, match.start() - 4) : match.start()]):
                continue  # a target or a limit
            line = first + block.count("\n", 0, match.start())
            found.append(f"line {line}: {match.group(0)!r} (no {' or '.join(missing)} in its paragraph)")
    return found


# --- the docs ---------------------------------------------------------------------------------------


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines, over {MAX_README_LINES}: move the detail to a page under docs/ "
        "and link it from the README's Documentation table."
    )


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t).resolve() for t in relative_links(README.read_text(encoding="utf-8"))}
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"README.md does not link docs/{unlinked}: add a row to its Documentation table."


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_a_file(path: Path) -> None:
    missing = broken_links(path)
    assert not missing, f"{path.relative_to(REPO)} links to files that do not exist: {missing}"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_changelog_prose(path: Path) -> None:
    found = changelog_phrases(path.read_text(encoding="utf-8"))
    assert not found, (
        f"{path.relative_to(REPO)} narrates changes ({'; '.join(found)}): describe what the code does; "
        "the history is in git."
    )


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_measured_figure_is_dated(path: Path) -> None:
    found = undated_figures(path.read_text(encoding="utf-8"))
    assert not found, (
        f"{path.relative_to(REPO)}: measured figures without their date and CPU ({'; '.join(found)}). "
        'Add both to the paragraph, e.g. "(2026-12-05, 2-vCPU AMD EPYC with avx512_bf16)", or "CPU not '
        'recorded"; write a setting in words ("120 seconds") or in backticks; drop a stale figure.'
    )


# --- the rules themselves ---------------------------------------------------------------------------


def test_prose_blocks_skip_code() -> None:
    text = "Intro `12 s` here.\n\n```\n3 s\n```\n\n    indented 4 s\n\n# Title\nbody"
    blocks = [block for _, block in prose_blocks(text)]
    assert blocks == ["Intro   here.", "# Title", "body"]


def test_links_found_and_judged(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("x")
    page = tmp_path / "README.md"
    page.write_text(
        'See [a](docs/a.md#part), [b](docs/b.md "title"), [web](https://x.org), [top](#intro),\n'
        "`[code](docs/c.md)` and ![img](docs/d.png).\n\n[ref]: docs/e.md\n\n```\n[f](docs/f.md)\n```\n"
    )
    assert relative_links(page.read_text()) == ["docs/a.md", "docs/b.md", "docs/d.png", "docs/e.md"]
    assert broken_links(page) == ["docs/b.md", "docs/d.png", "docs/e.md"]


def test_changelog_phrases_are_caught_and_plain_english_is_not() -> None:
    prose = (
        "The stage used to cost a model. It no longer does.\nUnder the old rule it failed; it now passes. "
        "Before, it crashed."
    )
    assert len(changelog_phrases(prose)) == 5
    plain = (
        "The seed is used to split rows. Now run `make run`. Before training, validate checks the data.\n"
        "The `--now` flag and\n\n```\nit now runs\n```\n"
    )
    assert changelog_phrases(plain) == []


def test_figures_need_a_date_and_a_cpu_in_their_paragraph() -> None:
    assert undated_figures("It ran 19.8 samples/s in 449 s, 1.42x faster.") == [
        "line 1: '19.8 samples/s' (no date or CPU in its paragraph)",
        "line 1: '449 s' (no date or CPU in its paragraph)",
        "line 1: '1.42x' (no date or CPU in its paragraph)",
    ]
    assert undated_figures("It took 11 min 28 s\n(2026-11-29, 2-vCPU AMD EPYC).") == []
    assert undated_figures("It took 12 s (2026-11-29).") == ["line 1: '12 s' (no CPU in its paragraph)"]
    # a date in another paragraph does not count
    assert len(undated_figures("It took 12 s.\n\n(2026-11-29, CPU not recorded)")) == 1


def test_settings_targets_and_code_are_not_measurements() -> None:
    text = (
        "Waits 120 seconds at most; the target is < 5 s and >= 10 samples/s; `timeout_s: 3 s`;\n"
        "5 epochs, 8 x 128 windows, p95 919, 3 samples, v1.2.\n\n```\nstep 93/465: 20.1 samples/s\n```\n"
    )
    assert undated_figures(text) == []
