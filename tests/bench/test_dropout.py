"""bench.dropout's cheaper masks: the same dropout probability, padding still masked, eval untouched."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.dropout import FastDropout, keep_scale, use_fast_masks


def test_keep_scale_drops_p_and_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    k = keep_scale(torch.ones(1000, 1000), 0.1)
    assert abs(float((k == 0).float().mean()) - 0.1) < 0.002
    assert abs(float(k.mean()) - 1.0) < 0.003
    assert set(torch.unique(k).tolist()) == {0.0, float(torch.tensor(1 / 0.9))}
    torch.manual_seed(0)
    assert torch.equal(keep_scale(torch.ones(1000, 1000), 0.1), k)  # seeded: reproducible


def test_fast_masks_leave_eval_unchanged_and_mask_padding_in_training(tiny_bert: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3).eval()
    ids = torch.randint(5, 100, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    before = model(input_ids=ids, attention_mask=mask).logits
    use_fast_masks(model)
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert any(isinstance(m, FastDropout) for m in model.modules())
    assert torch.allclose(model(input_ids=ids, attention_mask=mask).logits, before, atol=1e-6)

    model.train()
    torch.manual_seed(1)
    out = model(input_ids=ids, attention_mask=mask).logits
    other = ids.clone()
    other[1, 7:] = 3  # only padded positions change: same random masks, same answer if padding is masked
    torch.manual_seed(1)
    assert torch.allclose(model(input_ids=other, attention_mask=mask).logits, out, atol=1e-6)
    torch.manual_seed(2)
    assert not torch.allclose(model(input_ids=ids, attention_mask=mask).logits, out)  # dropout is live
