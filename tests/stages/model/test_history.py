"""The training curves: the kept (best) epoch is marked on both panels."""

from __future__ import annotations

from stages.model.history import curves_figure


def test_the_curves_mark_the_best_epoch() -> None:
    history = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "val_accuracy": a, "val_macro_f1": a}
        for e, a in ((1, 0.7), (2, 0.9), (3, 0.8))
    ]
    fig = curves_figure(history, "macro_f1", best_epoch=2)
    loss, val = fig.axes
    for ax in (loss, val):  # a dashed line at the kept epoch on both panels, named in the legend
        marks = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert [list(ln.get_xdata()) for ln in marks] == [[2, 2]]
        assert "best epoch 2 (kept)" in [t.get_text() for t in ax.get_legend().get_texts()]
    star = [ln for ln in val.get_lines() if ln.get_marker() == "*"]
    assert [(list(s.get_xdata()), list(s.get_ydata())) for s in star] == [([2], [0.9])]
    assert val.get_title() == "validation: best epoch 2, macro_f1 0.9000"
