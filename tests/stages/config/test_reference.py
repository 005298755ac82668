"""docs/params.md is generated from the params models and must be fresh; every key is described."""

from __future__ import annotations

from pathlib import Path

import yaml

from stages.config.reference import main, render, undocumented
from stages.config.sections import ALL_MODELS

ROOT = Path(__file__).resolve().parents[3]


def test_docs_params_md_is_fresh() -> None:
    committed = (ROOT / "docs/params.md").read_text(encoding="utf-8")
    assert committed == render(ALL_MODELS), "docs/params.md is stale: run `make docs` and commit it"


def test_every_key_has_a_description() -> None:
    assert undocumented(ALL_MODELS) == []


def test_every_params_yaml_key_is_on_the_page() -> None:
    page = render(ALL_MODELS)

    def keys(data: object, prefix: str) -> list[str]:
        if not isinstance(data, dict):
            return [prefix]
        return [k for name, v in data.items() for k in keys(v, f"{prefix}.{name}" if prefix else name)]

    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    flat = [k for k in keys(params, "") if k.count(".") >= 1 and not k.startswith("label.aliases.")]
    missing = [k for k in flat if f"| `{k}` |" not in page]
    assert missing == []


def test_main_writes_the_page_atomically(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "params.md"
    main(["--out", str(out)])
    assert out.read_text(encoding="utf-8") == render(ALL_MODELS)
    assert [p.name for p in out.parent.iterdir()] == ["params.md"]  # no temporary file left beside it
