"""A live progress bar per run (epoch, loss, main metric, ETA); silent when not a terminal."""

from __future__ import annotations

from typing import Any


class EpochProgress:
    """``with EpochProgress(label, epochs, metric, enabled=...) as p:`` then ``p.update(entry)``
    once per epoch (``entry`` is a ``training.EpochResult``)."""

    def __init__(self, label: str, epochs: int, metric: str, *, enabled: bool) -> None:
        self.label, self.epochs, self.metric, self.enabled = label, epochs, metric, enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                TimeRemainingColumn(), transient=True)
            self._progress.start()
            from rich.markup import escape

            self._task = self._progress.add_task(escape(self.label), total=self.epochs,
                                                 status="epoch 1 ...")
        return self

    def update(self, entry: Any) -> None:
        if self._progress is None:
            return
        parts = [f"loss {entry.metrics.get('train/loss', float('nan')):.4f}"]
        for key in ("val/loss", self.metric):
            if key in entry.metrics and not parts[-1].startswith(key):
                parts.append(f"{key} {entry.metrics[key]:.4f}")
        self._progress.update(self._task, completed=entry.epoch, status="  ".join(parts))

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
