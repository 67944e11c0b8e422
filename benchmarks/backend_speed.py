"""Training-step speed of each backend against a hand-written loop in its own framework.

Prints, per backend, the ratio (hand-written time / backend time) measured side by side in one
process: blocks of steps alternate between the two loops, so machine noise hits both. A ratio of
1.0 means the backend's canonical step (canonical loss and optimizer, fused kernels, compiled
step) costs nothing over the plain framework idiom; the goal is at least 0.95.

    .venv/bin/python benchmarks/backend_speed.py [--steps 200] [--block 20] [--timesteps 200]

``--against torch --backends jax`` instead compares backends with each other: the seconds per
canonical training step of each, every backend in its own process with the same thread count
(``--threads``, default 1, handed to each as ``Resources(threads=...)``), alternating
backends over ``--rounds`` rounds and keeping each one's fastest round (for a backend without
a hand-written loop here, such as the JAX example plugin)::

    .venv/bin/python benchmarks/backend_speed.py --against torch --backends jax --threads 1

Each backend runs in its own process. The network is the lecture's HAR model (three Bi-LSTM(32),
dropout 0.5, softmax), batch 64, Adam; the hand-written loops use ``torch.optim.Adam(foreach=
True)`` and ``keras.optimizers.Adam`` inside a ``tf.function``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _batches(timesteps: int, count: int = 8):
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(64, timesteps, 6)).astype(np.float32) for _ in range(count)]
    y = [rng.integers(0, 7, 64) for _ in range(count)]
    return x, y


def _ours(backend_name: str, timesteps: int, steps: int, threads: int | None = None):
    from orchestrator.canonical import catalogue, networks
    from orchestrator.canonical.initializers import init_weights
    from orchestrator.contract.backend import Resources
    from orchestrator.plugins import manager as plugin_manager

    backend = plugin_manager.backends().load(backend_name, Resources(threads=threads))
    spec = networks.har_network(timesteps, 6, 7)
    model = backend.build_model(spec, init_weights(spec, 0))
    session = backend.training_session(
        model, catalogue.resolve("loss", "sparse_categorical_crossentropy"),
        catalogue.resolve("optimizer", "adam"), n_train=64 * steps)

    def run(x, y):
        for xb, yb in zip(x, y):
            session.train_step(xb, yb)
        session.end_epoch()  # the one host sync per block, like the plain loop's
    return run


def _plain_torch(timesteps: int):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstms = nn.ModuleList([nn.LSTM(6 if i == 0 else 64, 32, batch_first=True,
                                                bidirectional=True) for i in range(3)])
            self.drop, self.fc = nn.Dropout(0.5), nn.Linear(64, 7)

        def forward(self, x):
            for lstm in self.lstms[:-1]:
                x, _ = lstm(x)
            _, (h, _) = self.lstms[-1](x)
            return torch.softmax(self.fc(self.drop(torch.cat([h[0], h[1]], -1))), -1)

    net = Net().train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, foreach=True)
    total = torch.zeros(())

    def run(x, y):
        nonlocal total
        for xb, yb in zip(x, y):
            opt.zero_grad(set_to_none=True)
            p = net(torch.from_numpy(xb)).clamp(1e-7, 1 - 1e-7)
            loss = -torch.log(p[torch.arange(len(yb)), torch.from_numpy(yb)]).mean()
            loss.backward()
            opt.step()
            total = total + loss.detach()
        total.item()
    return run


def _plain_tensorflow(timesteps: int):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf

    inputs = keras.Input((timesteps, 6))
    h = inputs
    for i in range(3):
        h = keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=i < 2))(h)
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Dropout(0.5)(h))
    model = keras.Model(inputs, outputs)
    opt = keras.optimizers.Adam(1e-3)
    opt.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(reduce_retracing=True)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def run(x, y):
        loss = None
        for xb, yb in zip(x, y):
            loss = step(tf.constant(xb), tf.constant(yb.astype(np.int32)))
        float(loss)
    return run


def measure(backend_name: str, steps: int, block: int, timesteps: int) -> dict[str, float]:
    """Seconds of both loops over ``steps`` steps, in alternating blocks (in this process)."""
    x, y = _batches(timesteps, block)
    loops = {"ours": _ours(backend_name, timesteps, steps),
             "plain": (_plain_torch if backend_name == "torch" else _plain_tensorflow)(timesteps)}
    for run in loops.values():  # warm-up: compilation, allocator
        run(x[:2], y[:2])
    seconds = {"ours": 0.0, "plain": 0.0}
    for k in range(max(steps // block, 1)):
        order = ("ours", "plain") if k % 2 == 0 else ("plain", "ours")
        for name in order:
            started = time.perf_counter()
            loops[name](x, y)
            seconds[name] += time.perf_counter() - started
    return seconds


def step_seconds(backend_name: str, steps: int, block: int, timesteps: int,
                 threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds per canonical training step of one backend after a warm-up, in this
    process; CPU time counts every thread of the process, so it stays meaningful on a busy
    machine, where wall time also measures the other processes."""
    x, y = _batches(timesteps, block)
    run = _ours(backend_name, timesteps, steps, threads)
    run(x[:2], y[:2])  # warm-up: compilation, allocator
    blocks = max(steps // block, 1)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(blocks):
        run(x, y)
    return ((time.perf_counter() - started) / (blocks * block),
            (time.process_time() - cpu) / (blocks * block))


def compare_backends(reference: str, others: list[str], args: argparse.Namespace) -> None:
    from orchestrator.orchestration.isolation import run_isolated

    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name in [reference, *others]:
            wall, cpu = run_isolated(step_seconds, name, args.steps, args.block,
                                     args.timesteps, args.threads)
            old = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(old[0], wall), min(old[1], cpu))
    ref_wall, ref_cpu = best[reference]
    for name in [reference, *others]:
        wall, cpu = best[name]
        print(f"{name:<11} {wall * 1000:8.1f} ms/step wall, {cpu * 1000:8.1f} ms/step CPU "
              f"({args.threads} thread(s), HAR network, {args.timesteps} time steps, batch 64); "
              f"relative to {reference}: {wall / ref_wall:.2f} x wall, {cpu / ref_cpu:.2f} x CPU",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["torch", "tensorflow"])
    parser.add_argument("--against", default=None,
                        help="compare --backends with this backend (seconds per step)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.against:
        compare_backends(args.against, args.backends, args)
        return
    from orchestrator.orchestration.isolation import run_isolated

    for name in args.backends:
        seconds = run_isolated(measure, name, args.steps, args.block, args.timesteps)
        ratio = seconds["plain"] / seconds["ours"]
        print(f"{name:<11} hand-written {seconds['plain']:7.2f} s  backend {seconds['ours']:7.2f} s"
              f"  speed ratio (hand-written / backend) {ratio:.3f}", flush=True)


if __name__ == "__main__":
    main()
