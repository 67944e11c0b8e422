"""The core epoch loop: identical batches for every backend, metrics per epoch, exceptions through."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator import catalogue, models, plugin_manager
from orchestrator.initializers import init_weights
from orchestrator.training import Batches, EpochResult, NonFiniteLossError, fit


def test_batches_are_a_function_of_seed_and_epoch() -> None:
    x = np.arange(10)[:, None].astype(float)
    y = np.arange(10)
    batches = Batches(x, y, batch_size=4, seed=3)
    first = [b[1].tolist() for b in batches.epoch(1)]
    assert first == [b[1].tolist() for b in Batches(x, y, batch_size=4, seed=3).epoch(1)]
    assert first != [b[1].tolist() for b in batches.epoch(2)]
    assert [len(b) for b in first] == [4, 4, 2] and len(batches) == 3
    assert sorted(sum(first, [])) == list(range(10))
    assert [len(b[1]) for b in Batches(x, y, 4, drop_last=True).epoch(1)] == [4, 4]
    assert Batches(x, y, None).n_samples == 10 and len(Batches(x, y, None)) == 1
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        Batches(x, y[:9])


@pytest.fixture(scope="module", params=["torch", "tensorflow"])
def backend(request):
    return plugin_manager.backends().load(request.param)


def _session(backend, lr: float = 0.05):
    spec = models.mlp(4, 3, hidden=(8,))
    model = backend.build_model(spec, init_weights(spec, 0))
    loss = catalogue.resolve("loss", "sparse_categorical_crossentropy", {"from_logits": True})
    return model, backend.training_session(model, loss,
                                           catalogue.resolve("optimizer", "sgd", {"lr": lr}),
                                           n_train=64)


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (64, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)


def test_fit_reports_metrics_per_epoch_and_learns(backend) -> None:
    _, session = _session(backend, lr=0.5)
    x, y = _data()
    seen: list[EpochResult] = []
    result = fit(session, Batches(x, y, 16), 5, callbacks=[seen.append],
                 evaluate=lambda epoch: {"val/loss": session.evaluate(x, y)["loss"]})
    assert [e.epoch for e in seen] == [1, 2, 3, 4, 5]
    assert set(seen[0].metrics) == {"train/loss", "val/loss"}
    losses = result.history("train/loss")
    assert losses[-1] < losses[0]
    assert all(e.samples_per_second > 0 for e in seen)


def test_callback_exceptions_stop_training_at_once(backend) -> None:
    class Pruned(Exception):
        pass

    _, session = _session(backend)
    x, y = _data()
    epochs = []

    def prune_at_two(entry: EpochResult) -> None:
        epochs.append(entry.epoch)
        if entry.epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        fit(session, Batches(x, y, 16), 10, callbacks=[prune_at_two])
    assert epochs == [1, 2]


def test_non_finite_loss_raises(backend) -> None:
    _, session = _session(backend, lr=1e30)
    x, y = _data()
    x = x * 1e20
    with pytest.raises(NonFiniteLossError, match="training loss is"):
        fit(session, Batches(x, y, 16), 5)
