"""The DAG as the retrain flow sees it: `dvc.yaml`'s stages, read by DVC, dependencies first.

The flow never keeps its own list of stages: it asks DVC (`Repo.index.graph`) and orders the stages
topologically, ties kept in dvc.yaml order. `select_stages` cuts the DAG down to a `--target`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


class RetrainError(RuntimeError):
    """The flow cannot start: not a DVC repo, an unknown target, a bad override. Says what to fix."""


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage of dvc.yaml as the flow needs it."""

    name: str  # the stage name: also the Prefect task name
    addressing: str  # what `dvc repro` takes (differs from name only for nested dvc.yaml files)
    upstream: tuple[str, ...] = ()
    always_changed: bool = False
    json_outputs: tuple[str, ...] = ()  # its JSON outs/metrics (reports), relative to the repo root
    outputs: tuple[str, ...] = ()  # all its outs/metrics/plots, relative to the repo root


def find_root(root: str | Path | None = None) -> Path:
    """The DVC repository root at or above `root` (the working directory by default)."""
    start = Path(root or ".").resolve()
    # what DVC's Repo.find_root does (the nearest folder holding .dvc/, not past a mount point), without
    # importing DVC: that takes 0.2-0.7 s, and `ftpipe check`, `history` and `--help` need nothing else of it
    for folder in (start, *start.parents) if start.is_dir() else ():
        if (folder / ".dvc").is_dir():
            return folder
        if os.path.ismount(folder):
            break
    raise RetrainError(
        f"{start} is not inside a DVC repository (no .dvc/ folder here or above). Run from the "
        "ftpipe checkout, or pass --root."
    )


def read_dag(root: str | Path) -> list[StageSpec]:
    """The pipeline stages of `dvc.yaml`, dependencies first (ties kept in dvc.yaml order)."""
    import networkx as nx
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    root = Path(root).resolve()
    with Repo(str(root)) as repo:
        try:
            graph = repo.index.graph  # edges point from a stage to the stages it depends on
        except DvcException as exc:
            raise RetrainError(f"cannot read the DAG from {root / 'dvc.yaml'}: {exc}") from None
        position = {stage: i for i, stage in enumerate(repo.index.stages)}
        specs = []
        for stage in nx.lexicographical_topological_sort(graph.reverse(), key=lambda s: position.get(s, 0)):
            if not getattr(stage, "cmd", None):  # a `dvc add` .dvc file, not a pipeline stage
                continue
            upstream = sorted(s.name for s in graph.successors(stage) if getattr(s, "cmd", None))
            outs = [Path(str(out.fs_path)) for out in stage.outs]
            json_outs = sorted(str(p.relative_to(root)) for p in outs if p.suffix == ".json")
            dvcfile = Path(stage.path_in_repo).as_posix()  # DVC's own `addressing` is relative to the cwd
            specs.append(
                StageSpec(
                    name=stage.name,
                    addressing=stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}",
                    upstream=tuple(upstream),
                    always_changed=bool(stage.always_changed),
                    json_outputs=tuple(json_outs),
                    outputs=tuple(sorted(str(p.relative_to(root)) for p in outs)),
                )
            )
    return specs


def select_stages(dag: list[StageSpec], target: str | None) -> list[StageSpec]:
    """`target` and everything it depends on, in DAG order; the whole DAG when `target` is None."""
    if not target:
        return list(dag)
    by_name = {s.name: s for s in dag} | {s.addressing: s for s in dag}
    if target not in by_name:
        raise RetrainError(
            f"unknown target stage `{target}`; dvc.yaml has: {', '.join(s.name for s in dag)}."
        )
    keep, todo = set(), [by_name[target].name]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(by_name[name].upstream)
    return [s for s in dag if s.name in keep]
