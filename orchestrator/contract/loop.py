"""The epoch loop, shared by every backend: same batches, same order, metrics reported per epoch.

Batches are produced here, in NumPy, outside the frameworks, so that two backends given the same
seed see identical mini-batches in identical order. A backend only runs ``train_step`` on them.
Callbacks receive each epoch's metrics and may raise (an Optuna prune, a user interrupt): the loop
never swallows an exception.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from orchestrator.contract.session import TrainingSession


BATCH_REPORT_EVERY = 20


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, value: float) -> None:
        super().__init__(f"training loss is {value} at epoch {epoch}")
        self.epoch = epoch
        self.value = value


@dataclass(frozen=True)
class Batches:
    """Mini-batches of ``(x, y)``, reshuffled every epoch from ``(seed, epoch)``.

    ``batch_size=None`` gives one batch of everything. The last, smaller batch is kept (so that
    every sample counts), unless ``drop_last``.
    """

    x: np.ndarray
    y: np.ndarray
    batch_size: int | None = 32
    shuffle: bool = True
    seed: int = 0
    drop_last: bool = False

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.y)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def __len__(self) -> int:
        """Batches per epoch."""
        size = self.batch_size or len(self.x)
        full, rest = divmod(len(self.x), size)
        return full + (1 if rest and not self.drop_last else 0)

    @property
    def n_samples(self) -> int:
        size = self.batch_size or len(self.x)
        return len(self.x) - (len(self.x) % size if self.drop_last else 0)

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        index = self.order(epoch)
        size = self.batch_size or len(self.x)
        for start in range(0, len(index), size):
            chunk = index[start:start + size]
            if self.drop_last and len(chunk) < size:
                return
            yield self.x[chunk], self.y[chunk]


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    metrics: dict[str, float]
    seconds: float
    samples_per_second: float


@dataclass
class FitResult:
    epochs: list[EpochResult] = field(default_factory=list)

    @property
    def last(self) -> EpochResult:
        return self.epochs[-1]

    def history(self, metric: str) -> list[float]:
        return [e.metrics[metric] for e in self.epochs if metric in e.metrics]


def fit(session: TrainingSession, batches: Batches, epochs: int, *,
        evaluate: Callable[[int], dict[str, float]] | None = None,
        callbacks: Sequence[Callable[[EpochResult], None]] = (),
        start_epoch: int = 1,
        step_lr: Callable[[int], float] | None = None,
        on_batch: Callable[[int, int, int], None] | None = None) -> FitResult:
    """Train for ``epochs`` epochs; report ``train/loss`` (plus ``evaluate``'s metrics) per epoch.

    ``step_lr(k)``, when given, sets the learning rate before optimizer step ``k`` (0-based,
    counted over the whole fit; ``len(batches) * epochs`` steps in all). ``on_batch(epoch, done,
    batches)`` is called every ``BATCH_REPORT_EVERY`` steps within an epoch (progress display).
    Raises ``NonFiniteLossError`` as soon as an epoch's training loss is NaN or infinite, and
    lets every exception of the session or a callback through.
    """
    result = FitResult()
    step = 0
    per_epoch = len(batches)
    for epoch in range(start_epoch, start_epoch + epochs):
        started = time.perf_counter()
        for k, (x, y) in enumerate(batches.epoch(epoch), start=1):
            if step_lr is not None:
                session.set_learning_rate(step_lr(step))
            session.train_step(x, y)
            step += 1
            if on_batch is not None and k % BATCH_REPORT_EVERY == 0:
                on_batch(epoch, k, per_epoch)
        train = session.end_epoch()
        seconds = time.perf_counter() - started
        loss = train["loss"]
        if not math.isfinite(loss):
            raise NonFiniteLossError(epoch, loss)
        metrics = {f"train/{k}": v for k, v in train.items()}
        if evaluate is not None:
            metrics.update(evaluate(epoch))
        entry = EpochResult(epoch, metrics, seconds, batches.n_samples / max(seconds, 1e-9))
        result.epochs.append(entry)
        for callback in callbacks:
            callback(entry)
    return result
