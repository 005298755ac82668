"""The training history: one row per epoch from the Trainer's log, the kept (best) row, and the curves.

history = epoch_history(trainer.state.log_history)   # [{"epoch": 1, "step": 12, "val_loss": ...}, ...]
best = best_row(history, trainer.state.best_global_step)
plot_history(history, "macro_f1", Path("reports/finetune_curves.png"), best["epoch"])
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages.core.io import atomic_file
from stages.model.trainer import FinetuneError
from stages.model.training import MULTI_LABEL_VALIDATION_METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Row = dict[str, float]  # epoch and step (ints when whole), losses, validation metrics, learning rate


def epoch_history(log_history: list[dict[str, Any]]) -> list[Row]:
    """One row per epoch from Trainer's log: train loss, validation loss and metrics, learning rate."""
    rows: dict[int, Row] = {}
    for entry in log_history:
        if "step" not in entry or "epoch" not in entry or "train_runtime" in entry:
            continue
        epoch = float(entry["epoch"])
        row = rows.setdefault(
            entry["step"],
            {"epoch": int(epoch) if epoch.is_integer() else round(epoch, 4), "step": entry["step"]},
        )
        if "loss" in entry:
            row["train_loss"] = float(entry["loss"])
            if "learning_rate" in entry:
                row["learning_rate"] = float(entry["learning_rate"])
        for key in ("loss", *MULTI_LABEL_VALIDATION_METRICS):  # those an epoch logged
            if f"eval_{key}" in entry:
                row[f"val_{key}"] = float(entry[f"eval_{key}"])
    return [rows[s] for s in sorted(rows) if "val_loss" in rows[s]]


def best_row(history: list[Row], best_step: int | None) -> Row:
    """The history row of the kept (best) step; the last row when the Trainer named none."""
    best = next((r for r in history if r["step"] == best_step), history[-1] if history else None)
    if best is None:
        raise FinetuneError("finetune: no validation result was logged; is the validation split empty?")
    return best


def curves_figure(history: list[Row], metric: str, best_epoch: float | None) -> Figure:
    """Loss curves and validation metrics per epoch; the best epoch (the one kept) is marked on both."""
    import matplotlib  # here, not at the top: a process that never plots does not pay for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r.get("train_loss") for r in history], "o-", label="train loss")
    ax1.plot(epochs, [r["val_loss"] for r in history], "s-", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    for key in ("val_accuracy", "val_macro_f1"):
        ax2.plot(epochs, [r[key] for r in history], "o-", label=key.removeprefix("val_").replace("_", "-"))
    ax2.set_xlabel("epoch")
    best = next((r for r in history if r["epoch"] == best_epoch), None)
    if best is not None:
        label = f"best epoch {best_epoch} (kept)"
        for ax in (ax1, ax2):
            ax.axvline(best_epoch, color="0.4", linestyle="--", linewidth=1, label=label)
        ax2.plot([best_epoch], [best[f"val_{metric}"]], "*", color="crimson", markersize=14)
        ax2.set_title(f"validation: best epoch {best_epoch}, {metric} {best[f'val_{metric}']:.4f}")
    else:
        ax2.set_title(f"validation (best epoch by {metric})")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_history(history: list[Row], metric: str, path: Path, best_epoch: float | None) -> None:
    """The curves of `curves_figure`, as a PNG."""
    import matplotlib.pyplot as plt

    fig = curves_figure(history, metric, best_epoch)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
