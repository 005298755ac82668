"""The memory plan: exact parameter counts, the per-layer activation formula against what autograd saves,
the layouts (fsdp, checkpointing, processes sharing a CPU), the budget, and the fixes a refusal names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from stages.config.finetune import BaseModelRef
from stages.model.build import load_model_and_tokenizer
from stages.model.memplan import (
    BUDGET_ENV,
    GIB,
    Layout,
    MemoryPlanError,
    ModelShape,
    fixes,
    layer_activation_bytes,
    make_plan,
    memory_budget,
    model_shape,
    num_labels_of,
    refusal,
)
from stages.model.sharding import block_class_names, transformer_blocks
from tests.conftest import TINY_BERT_SHAPE

NAMES = ["a", "b", "c"]
# a MiniLM-L6-sized shape, for arithmetic only (nothing is built from it)
MINILM = ModelShape("minilm", 384, 6, 12, 1536, 30522, 22_567_301, 22_567_301, 10_764_288, 11_920_517)


@pytest.mark.parametrize(("pooling", "freeze"), [("mean", "none"), ("native", "none"), ("mean", "encoder")])
def test_parameter_counts_match_the_model_the_stage_builds(
    tiny_bert: Path, pooling: str, freeze: str
) -> None:
    model, _ = load_model_and_tokenizer(BaseModelRef(model=str(tiny_bert)), NAMES, freeze, pooling)
    shape = model_shape(str(tiny_bert), len(NAMES), pooling, freeze)
    assert shape.params == sum(p.numel() for p in model.parameters())
    assert shape.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert shape.linear_params == linear
    assert (shape.hidden, shape.layers, shape.heads) == (32, 2, 2)
    block = sum(p.numel() for p in model.base_model.encoder.layer[0].parameters())
    assert shape.largest_unit == max(block, shape.params - 2 * block)  # the FSDP shard groups


def test_the_blocks_are_the_longest_list_of_one_class() -> None:
    """One rule for FSDP's shard groups (sharding) and the unit the plan gathers whole (memplan)."""
    nn = torch.nn

    class Block(nn.Linear):
        pass

    model = nn.Module()
    model.mixed = nn.ModuleList([nn.Linear(1, 1) for _ in range(4)] + [Block(1, 1)])  # longest, two classes
    model.first = nn.ModuleList([Block(2, 2) for _ in range(3)])
    model.tie = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])  # as long: the first list wins
    model.short = nn.ModuleList([nn.Linear(1, 1)])
    assert transformer_blocks(model) is model.first
    assert block_class_names(model) == ["Block"]
    assert transformer_blocks(nn.Sequential(nn.Linear(1, 1))) is None
    assert block_class_names(nn.ModuleDict({"empty": nn.ModuleList()})) == []


def saved_bytes(layer: torch.nn.Module, x: torch.Tensor, autocast: bool) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of `layer(x)`, parameters excluded."""
    seen: dict[int, int] = {}
    params = {p.untyped_storage().data_ptr() for p in layer.parameters()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            layer(x)
    casts = sum(m.weight.numel() * 2 for m in layer.modules() if isinstance(m, torch.nn.Linear))
    return sum(v for k, v in seen.items() if k not in params) - (casts if autocast else 0)


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 0.01), ("bf16", 0.10)])
def test_layer_formula_matches_what_autograd_saves(precision: str, tolerance: float) -> None:
    """One BERT layer in training mode on the CPU (the stage's attention: sdpa, which takes its math path)."""
    cfg = BertConfig(**TINY_BERT_SHAPE, attn_implementation="sdpa")
    layer = BertLayer(cfg).train()
    b, s = 4, 16
    measured = saved_bytes(layer, torch.randn(b, s, 32, requires_grad=True), precision == "bf16")
    shape = dataclasses.replace(MINILM, hidden=32, heads=2, intermediate=64)
    planned = layer_activation_bytes(shape, Layout(precision=precision, batch_size=b, max_length=s))
    assert abs(planned - measured) <= tolerance * measured, (planned, measured)


def rows(plan: object) -> dict[str, int]:
    return {r.name: r.bytes for r in plan.rows}  # type: ignore[attr-defined]


def test_fsdp_divides_the_states_and_adds_one_gathered_unit() -> None:
    ddp = rows(make_plan(MINILM, Layout(device="cuda", world_size=4, per_node=4), GIB, "t"))
    fsdp = rows(make_plan(MINILM, Layout(device="cuda", strategy="fsdp", world_size=4, per_node=4), GIB, "t"))
    for name in ("weights", "gradients", "AdamW state"):
        assert fsdp[name] == ddp[name] // 4
    assert fsdp["gathered unit"] == MINILM.largest_unit * 8
    assert fsdp["activations"] == ddp["activations"]


def test_checkpointing_keeps_layer_inputs_instead_of_every_layer() -> None:
    lay = Layout(batch_size=32, max_length=256)
    full = rows(make_plan(MINILM, lay, GIB, "t"))["activations"]
    ckpt = rows(make_plan(MINILM, dataclasses.replace(lay, checkpointing=True), GIB, "t"))["activations"]
    assert ckpt < full / 2
    assert rows(make_plan(MINILM, dataclasses.replace(lay, frozen_body=True), GIB, "t"))["activations"] < ckpt


def test_bf16_adds_the_compute_copy_and_shrinks_activations() -> None:
    fp32 = rows(make_plan(MINILM, Layout(), GIB, "t"))
    bf16 = rows(make_plan(MINILM, Layout(precision="bf16"), GIB, "t"))
    assert bf16["compute copy"] == 2 * MINILM.linear_params and "compute copy" not in fp32
    assert bf16["activations"] < fp32["activations"]


def test_cpu_processes_share_the_machine_and_gpus_do_not() -> None:
    cpu = make_plan(MINILM, Layout(world_size=2, per_node=2), 4 * GIB, "t")
    gpu = make_plan(MINILM, Layout(device="cuda", world_size=2, per_node=2), 4 * GIB, "t")
    assert cpu.needed == 2 * cpu.per_process
    assert gpu.needed == gpu.per_process


def test_refusal_names_the_changes_that_fit() -> None:
    lay = Layout(batch_size=64, max_length=256)
    plan = make_plan(MINILM, lay, GIB, "t")
    ckpt = make_plan(MINILM, dataclasses.replace(lay, checkpointing=True), GIB, "t")
    budget = (plan.needed + ckpt.needed) // 2
    plan = make_plan(MINILM, lay, budget, "a test budget")
    assert not plan.fits
    found = fixes(plan)
    assert found[0].startswith("finetune.activation_checkpointing: true")
    assert sum(f.startswith("finetune.batch_size") for f in found) == 1  # the largest that fits, only
    text = refusal(plan)
    assert "finetune.activation_checkpointing: true" in text and "a test budget" in text
    assert BUDGET_ENV in text


def test_refusal_when_no_single_change_fits() -> None:
    plan = make_plan(MINILM, Layout(), GIB // 10, "t")
    assert fixes(plan) == []
    assert "No single change fits" in refusal(plan)


def test_gpu_refusal_offers_fsdp_and_bf16() -> None:
    lay = Layout(device="cuda", batch_size=8)
    big = dataclasses.replace(MINILM, params=2_000_000_000, trainable=2_000_000_000, largest_unit=100_000_000)
    need = make_plan(big, lay, GIB, "t").needed
    found = fixes(make_plan(big, lay, int(need * 0.6), "t"))
    assert any("strategy: fsdp" in f for f in found), found


def test_budget_from_the_environment() -> None:
    assert memory_budget("cpu", {BUDGET_ENV: "2.5"}) == (int(2.5 * GIB), f"{BUDGET_ENV}=2.5")
    assert memory_budget("cpu", {BUDGET_ENV: "off"})[0] > 10**15
    budget, source = memory_budget("cpu", {})
    assert budget > 0 and "RAM" in source
    with pytest.raises(MemoryPlanError, match=BUDGET_ENV):
        memory_budget("cpu", {BUDGET_ENV: "lots"})


def test_classes_from_labels_json(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text('{"0": "a", "1": "b", "2": "c"}')
    assert num_labels_of(tmp_path / "labels.json") == 3
    assert num_labels_of(tmp_path / "missing.json") == 2
