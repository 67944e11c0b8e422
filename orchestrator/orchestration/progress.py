"""Live progress bars (epoch, loss, main metric, ETA); silent when not a terminal.

A run reports through an ``EpochProgress``. Where the run's process owns the terminal (a tuning
worker), it draws its own bar; runs started by ``orchestrator run`` live in worker processes
that may run side by side, so they send their events to the parent (a ``sink``), whose
``ProgressBoard`` draws one bar per active run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# an event: ("open", label, epochs) | ("advance", completed, status | None) | ("close",)
Event = tuple
Sink = Callable[[Event], None]


def _new_progress(console: Any = None) -> Any:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
        TimeRemainingColumn(), transient=True, console=console)


class ProgressBoard:
    """One bar per open (key, label), drawn by the process that owns the terminal.
    ``handle(key, event)`` applies an event sent by the run identified by ``key``."""

    def __init__(self, console: Any = None) -> None:
        self._progress = _new_progress(console)
        self._tasks: dict[Any, Any] = {}

    def __enter__(self) -> ProgressBoard:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def handle(self, key: Any, event: Event) -> None:
        kind = event[0]
        if kind == "open":
            from rich.markup import escape

            self.close(key)
            _, label, epochs = event
            self._tasks[key] = self._progress.add_task(escape(label), total=epochs,
                                                       status="epoch 1 ...")
        elif kind == "advance" and key in self._tasks:
            _, completed, status = event
            fields = {} if status is None else {"status": status}
            self._progress.update(self._tasks[key], completed=completed, **fields)
        elif kind == "close":
            self.close(key)

    def close(self, key: Any) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)


class EpochProgress:
    """``with EpochProgress(label, epochs, metric, display=...) as p:`` then ``p.update(entry)``
    once per epoch (``entry`` is a ``training.EpochResult``) and ``p.batch(...)`` within epochs.

    ``display``: False (silent), True (draw a bar in this process) or a sink (send events to
    the process that draws)."""

    def __init__(self, label: str, epochs: int, metric: str, *,
                 display: bool | Sink) -> None:
        self.label, self.epochs, self.metric = label, epochs, metric
        self._board: ProgressBoard | None = None
        self._sink: Sink | None = None
        if callable(display):
            self._sink = display
        elif display:
            self._board = ProgressBoard()
            self._sink = lambda event: self._board.handle(None, event)

    @property
    def enabled(self) -> bool:
        return self._sink is not None

    def __enter__(self) -> EpochProgress:
        if self._board is not None:
            self._board.__enter__()
        if self._sink is not None:
            self._sink(("open", self.label, self.epochs))
        return self

    def batch(self, epoch: int, done: int, batches: int) -> None:
        """``done`` of ``batches`` steps of ``epoch`` taken: the bar moves inside long epochs."""
        if self._sink is not None:
            self._sink(("advance", epoch - 1 + done / batches, None))

    def update(self, entry: Any) -> None:
        if self._sink is None:
            return
        parts = [f"loss {entry.metrics.get('train/loss', float('nan')):.4f}"]
        for key in ("val/loss", self.metric):
            if key in entry.metrics and not parts[-1].startswith(key):
                parts.append(f"{key} {entry.metrics[key]:.4f}")
        self._sink(("advance", entry.epoch, "  ".join(parts)))

    def __exit__(self, *exc: Any) -> None:
        if self._sink is not None:
            self._sink(("close",))
        if self._board is not None:
            self._board.__exit__(*exc)
