"""The core epoch loop: identical batches for every backend, metrics per epoch, exceptions through."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.canonical import catalogue, networks
from orchestrator.plugins import manager as plugin_manager
from orchestrator.canonical.initializers import init_weights
from orchestrator.contract.loop import Batches, EpochResult, NonFiniteLossError, fit


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
    spec = networks.mlp(4, 3, hidden=(8,))
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
    _, session = _session(backend, lr=10.0)  # the largest lr validation allows
    x, y = _data()
    x = x * 1e20
    with pytest.raises(NonFiniteLossError, match="training loss is"):
        fit(session, Batches(x, y, 16), 5)


def test_step_lr_sets_the_rate_before_every_step(backend) -> None:
    # 4 steps per epoch, 2 epochs: a rate that is zero from step 3 on must leave the weights
    # exactly where 3 plain steps at 0.1 leave them
    x, y = _data()
    model, session = _session(backend, lr=0.1)
    rates: list[int] = []

    def step_lr(k: int) -> float:
        rates.append(k)
        return 0.1 if k < 3 else 0.0

    reports: list[tuple[int, int, int]] = []
    fit(session, Batches(x, y, 16, shuffle=False), 2, step_lr=step_lr,
        on_batch=lambda *report: reports.append(report))
    assert rates == list(range(8))
    assert reports == []  # reported every BATCH_REPORT_EVERY (20) steps, and there are 4
    reference, plain = _session(backend, lr=0.1)
    for k, (xb, yb) in enumerate(Batches(x, y, 16, shuffle=False).epoch(1)):
        if k < 3:
            plain.train_step(xb, yb)
    plain.end_epoch()
    for name, value in reference.get_weights().items():
        np.testing.assert_allclose(model.get_weights()[name], value, rtol=1e-6, atol=1e-7)


def test_schedule_factors() -> None:
    from pydantic import ValidationError

    from orchestrator.config.schema import Schedule

    cosine = Schedule(name="cosine", min_factor=0.1)
    assert cosine.factor_at(1, 5) == 1.0 and cosine.factor_at(5, 5) == pytest.approx(0.1)
    assert cosine.factor_at(3, 5) == pytest.approx(0.55)
    assert cosine.factor_of_progress(0.5) == pytest.approx(0.55)
    assert Schedule(name="step", every=2, factor=0.5).factor_at(5, 9) == 0.25
    assert Schedule().factor_of_progress(0.7) == 1.0
    with pytest.raises(ValidationError, match="per: step takes name cosine or constant"):
        Schedule(name="step", per="step")


def test_on_batch_reports_progress_inside_epochs(backend, monkeypatch) -> None:
    import orchestrator.contract.loop as training

    monkeypatch.setattr(training, "BATCH_REPORT_EVERY", 2)
    _, session = _session(backend)
    x, y = _data()
    reports: list[tuple[int, int, int]] = []
    fit(session, Batches(x, y, 16), 2, on_batch=lambda *report: reports.append(report))
    assert reports == [(1, 2, 4), (1, 4, 4), (2, 2, 4), (2, 4, 4)]
