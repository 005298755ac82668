"""bench.accuracy's pure parts: overrides, per-seed params, the summary."""

from __future__ import annotations

import pytest
import yaml

from bench.accuracy import ROOT, parse_override, seed_params, summarise


def test_parse_override_reads_yaml_values():
    assert parse_override("finetune.learning_rate=5e-5") == ("finetune", "learning_rate", 5e-5)
    assert parse_override("tokenize.windows=4") == ("tokenize", "windows", 4)
    assert parse_override("tokenize.truncation=head+tail") == ("tokenize", "truncation", "head+tail")
    assert parse_override("finetune.max_train_samples=null") == ("finetune", "max_train_samples", None)


@pytest.mark.parametrize("bad", ["finetune.epochs", "epochs=3", ".epochs=3", "finetune.=3"])
def test_parse_override_rejects_malformed(bad):
    with pytest.raises(SystemExit, match="section.key=value"):
        parse_override(bad)


def test_seed_params_sets_both_seeds_and_leaves_the_base_alone():
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = seed_params(base, [("finetune", "epochs", 4)], 7)
    assert (p["label"]["seed"], p["finetune"]["seed"], p["finetune"]["epochs"]) == (7, 7, 4)
    assert base["finetune"]["epochs"] != 4 or base["label"]["seed"] != 7
    assert base["label"]["seed"] == yaml.safe_load((ROOT / "params.yaml").read_text())["label"]["seed"]


def test_seed_params_rejects_an_unknown_section():
    with pytest.raises(SystemExit, match="no section `finetun`"):
        seed_params({"label": {}, "finetune": {}}, [("finetun", "epochs", 4)], 1)


def test_summarise_hand_checked():
    runs = [
        {
            "seed": 1,
            "model": {"accuracy": 0.96, "macro_f1": 0.95},
            "baseline": {"accuracy": 0.97, "macro_f1": 0.97},
        },
        {
            "seed": 2,
            "model": {"accuracy": 0.98, "macro_f1": 0.97},
            "baseline": {"accuracy": 0.97, "macro_f1": 0.96},
        },
    ]
    for r in runs:
        r["delta"] = {k: r["model"][k] - r["baseline"][k] for k in ("accuracy", "macro_f1")}
    s = summarise(runs)
    assert s["seeds"] == [1, 2]
    assert s["model_accuracy"] == {"mean": 0.97, "std": 0.0141, "min": 0.96, "max": 0.98}
    assert s["delta_accuracy"]["mean"] == 0.0
    assert s["delta_macro_f1"] == {"mean": -0.005, "std": 0.0212, "min": -0.02, "max": 0.01}
    assert summarise(runs[:1])["baseline_macro_f1"]["std"] is None
