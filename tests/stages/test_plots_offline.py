"""`dvc plots show` renders every declared plot without a network, and its output is git-ignored.

The real `dvc plots show` runs in a copy of the default run's reports (tests/fixtures/reports), dvc.yaml and .dvc/ (config and the
HTML template); the page it writes must load nothing from elsewhere (DVC's own page takes the Vega
libraries from a CDN, so offline 3 of the 5 plots were blank), show each plot declared in dvc.yaml, and,
where node is installed, its inline Vega libraries must draw each chart's spec to an SVG with marks.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURE_REPORTS, REPO, run_cmd

REMOTE = re.compile(r"^\s*(https?:)?//", re.I)


class Page(HTMLParser):
    """The page's src/href attributes, its inline scripts and the ids of its divs."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.inline: list[str] = []
        self.ids: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.links.append((tag, k, v))
            if k == "id" and v:
                self.ids.append(v)
        self._in_script = tag == "script" and not any(k == "src" for k, _ in attrs)
        if self._in_script:
            self.inline.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline[-1] += data


def declared_plots() -> tuple[list[str], list[str]]:
    """(the ids of the data plots, the image paths) declared in dvc.yaml, top level and per stage."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    data, images = [], []
    for entry in spec.get("plots", []):
        data += list(entry) if isinstance(entry, dict) else [entry]
    for stage in spec["stages"].values():
        for entry in stage.get("plots", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            (images if Path(path).suffix in (".png", ".svg", ".jpg") else data).append(path)
    return data, images


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`dvc plots show` run in a copy of the default run's reports; (the page's path, its text)."""
    root = tmp_path_factory.mktemp("plots")
    # what a clone has: tracked files, and new ones not ignored (the template before its first commit)
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    tracked = run_cmd([*listing, ".dvc", ".dvcignore"], REPO).stdout.split()
    for rel in [*tracked, "dvc.yaml", "params.yaml"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, root / rel)
    # the reports are DVC outputs (a clone gets them from `dvc pull`): the default run's, from the fixtures
    shutil.copytree(FIXTURE_REPORTS, root / "reports")
    run_cmd(["git", "init", "-q"], root)
    run_cmd(["dvc", "plots", "show"], root, env={"DVC_NO_ANALYTICS": "1"})
    html = root / "dvc_plots" / "index.html"
    return html, html.read_text(encoding="utf-8")


def test_the_page_loads_nothing_from_the_network(page: tuple[Path, str]) -> None:
    html, text = page
    parser = Page()
    parser.feed(text)
    remote = [link for link in parser.links if REMOTE.match(link[2])]
    assert not remote, f"{html} loads {remote}: blank without a network"
    assert not re.search(r"<script[^>]+src=", text), "every script must be inline"
    # the Vega libraries the charts need are on the page itself
    code = "\n".join(parser.inline)
    for lib in (".vega=", ".vegaLite=", ".vegaEmbed="):
        assert lib in code, f"{lib.strip('.=')} is not inlined in {html}"


def test_every_declared_plot_is_on_the_page(page: tuple[Path, str]) -> None:
    html, text = page
    data, images = declared_plots()
    assert data and images
    parser = Page()
    parser.feed(text)
    for plot in data:
        div = re.sub(r"[^A-Za-z0-9_-]", "_", plot)  # DVC's div ids: the plot id with / and . replaced
        assert any(i == div or i.startswith(div) for i in parser.ids), f"{plot} is missing from {html}"
        assert f"vegaEmbed('#{div}" in text or any(f"vegaEmbed('#{i}'" in text for i in parser.ids)
    shown = {v for tag, k, v in parser.links if tag == "img"}
    for image in images:
        src = next((s for s in shown if s.endswith(Path(image).name)), None)
        assert src is not None, f"{image} is not shown in {html}"
        assert (html.parent / src).resolve().is_file() or src.startswith("data:image")


@pytest.mark.skipif(shutil.which("node") is None, reason="node draws the charts; not installed")
def test_the_inline_libraries_draw_every_chart(page: tuple[Path, str], tmp_path: Path) -> None:
    """Run the page's own inline scripts in node (no DOM, no network) and draw each spec to an SVG."""
    html, text = page
    parser = Page()
    parser.feed(text)
    libs = [s for s in parser.inline if "vegaEmbed(" not in s]
    specs = [json.loads(m) for m in re.findall(r"var spec = (\{.*?\});\s*vegaEmbed", text, re.S)]
    assert len(specs) == len(declared_plots()[0]), "one Vega spec per data plot"
    (tmp_path / "libs.js").write_text("\n;\n".join(libs), encoding="utf-8")
    (tmp_path / "specs.json").write_text(json.dumps(specs), encoding="utf-8")
    script = """
const fs = require("fs"), vm = require("vm");
vm.runInThisContext(fs.readFileSync(process.argv[2], "utf8"));
const specs = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
(async () => {
  const out = [];
  for (const spec of specs) {
    const vg = spec.$schema && spec.$schema.includes("vega-lite") ? vegaLite.compile(spec).spec : spec;
    const view = new vega.View(vega.parse(vg), {renderer: "none"});
    const svg = await view.toSVG();
    out.push((svg.match(/<path|<rect|<line|<text/g) || []).length);
  }
  console.log(JSON.stringify({marks: out, embed: typeof vegaEmbed}));
})().catch(e => { console.error(e); process.exit(1); });
"""
    (tmp_path / "draw.js").write_text(script, encoding="utf-8")
    proc = subprocess.run(
        ["node", str(tmp_path / "draw.js"), str(tmp_path / "libs.js"), str(tmp_path / "specs.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["embed"] == "function"
    assert all(n > 10 for n in result["marks"]), result


def test_the_plots_output_is_git_ignored() -> None:
    """`dvc plots show` writes dvc_plots/: untracked, it would tag every later registration git.dirty."""
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=REPO, capture_output=True, timeout=30
    )
    assert proc.returncode == 0, "dvc_plots/ is not in .gitignore"
