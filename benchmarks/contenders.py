"""Training-step contenders for ``make bench``: the backends and their hand-written twins.

Every contender trains the same network from the same canonical initial weights
(``orchestrator.canonical.initializers.init_weights``, seed 0) on the same NumPy batches, with
the same loss and optimizer settings, so their losses after the measured steps must agree (the
benchmark checks it). The two models:

- ``har``: the lecture's activity network, 3 x Bi-LSTM(32), dense softmax over 7 classes,
  200 time steps x 6 channels, batch 64, sparse categorical cross entropy on probabilities,
  Adam 1e-3. Dropout is off so that every contender computes the same thing (dropout masks are
  random per framework; the layer costs well under 1 % of a step).
- ``char``: the character model of ``experiments/text.yaml``: embedding(64) -> LSTM(256) ->
  dense logits over 65 characters at each of 100 steps, batch 16, cross entropy from logits.

Contenders (each a ``Contender``: ``run(xs, ys)`` trains one block of steps and waits for the
result; ``loss(x, y)`` is the evaluation-mode loss on a batch):

- ``ours:<backend>``: ``Backend.training_session`` (the canonical step);
- ``ours:<backend>+mlflow``: the same, logging the trainer's per-epoch metrics into a temporary
  SQLite MLflow store after every block (one block = one epoch);
- ``plain:torch``: ``nn.LSTM`` modules and ``torch.optim.Adam(foreach=True)``;
- ``plain:tensorflow``: Keras layers, ``keras.optimizers.Adam`` inside one ``tf.function``;
- ``keras:torch``: a Keras 3 model on its torch backend (``KERAS_BACKEND=torch``) trained with
  ``train_on_batch``, what a multi-backend user would write. Its process must not import
  TensorFlow's plugin (Keras picks its backend once per process).

Thread settings are applied by ``configure_threads`` before any framework work and are the same
for every contender: torch intra-op and inter-op threads, ``torch.set_flush_denormal(True)``,
TensorFlow intra-op and inter-op threads.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

LR = 1e-3
ADAM_EPS = 1e-8  # the canonical Adam default (torch's too; Keras' is 1e-7, set explicitly)


@dataclass(frozen=True)
class ModelCase:
    name: str
    batch: int
    timesteps: int

    def spec(self) -> Any:
        from orchestrator.canonical import networks

        if self.name == "har":
            return networks.har_network(self.timesteps, 6, 7, dropout=0.0)
        return networks.char_network(VOCAB, self.timesteps, embedding_dim=64, units=256)

    def loss_spec(self) -> Any:
        from orchestrator.canonical import catalogue

        return catalogue.resolve("loss", "sparse_categorical_crossentropy",
                                 {"from_logits": self.name == "char"})

    def batches(self, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        rng = np.random.default_rng(1)
        if self.name == "har":
            xs = [rng.normal(size=(self.batch, self.timesteps, 6)).astype(np.float32)
                  for _ in range(count)]
            ys = [rng.integers(0, 7, self.batch).astype(np.int64) for _ in range(count)]
        else:
            xs = [rng.integers(0, VOCAB, (self.batch, self.timesteps)).astype(np.int64)
                  for _ in range(count)]
            ys = [rng.integers(0, VOCAB, (self.batch, self.timesteps)).astype(np.int64)
                  for _ in range(count)]
        return xs, ys


VOCAB = 65


def case(name: str, timesteps: int | None = None) -> ModelCase:
    if name == "har":
        return ModelCase("har", 64, timesteps or 200)
    if name == "char":
        return ModelCase("char", 16, timesteps or 100)
    raise ValueError(f"unknown model {name!r} (har, char)")


def weights(model: ModelCase) -> dict[str, np.ndarray]:
    from orchestrator.canonical.initializers import init_weights

    return {k: v.astype(np.float32) for k, v in init_weights(model.spec(), 0).items()}


def configure_threads(threads: int, frameworks: tuple[str, ...]) -> dict[str, int | bool]:
    """The same thread settings for every contender in this process; returns what was set."""
    settings: dict[str, int | bool] = {}
    if "torch" in frameworks:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
        torch.set_flush_denormal(True)
        settings.update(torch_intra_op=torch.get_num_threads(),
                        torch_inter_op=torch.get_num_interop_threads(),
                        torch_flush_denormal=True)
    if "tensorflow" in frameworks:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import orchestrator_tensorflow._tf  # noqa: F401  (Keras on TensorFlow, quiet import)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        settings.update(tf_intra_op=tf.config.threading.get_intra_op_parallelism_threads(),
                        tf_inter_op=tf.config.threading.get_inter_op_parallelism_threads())
    return settings


@dataclass
class Contender:
    name: str
    run: Callable[[list[np.ndarray], list[np.ndarray]], None]
    loss: Callable[[np.ndarray, np.ndarray], float]
    logging_seconds: list[float] | None = None  # per block: MLflow's share of run()


# --- the backends ---------------------------------------------------------------------------


def ours(backend_name: str, model: ModelCase, threads: int, tracked: bool = False,
         **session_options: Any) -> Contender:
    from orchestrator.canonical import catalogue
    from orchestrator.contract.backend import Resources
    from orchestrator.plugins import manager as plugin_manager

    backend = plugin_manager.backends().load(backend_name, Resources(threads=threads))
    built = backend.build_model(model.spec(), weights(model))
    session = backend.training_session(
        built, model.loss_spec(), catalogue.resolve("optimizer", "adam", {"lr": LR}),
        n_train=model.batch * 1000)
    for key, value in session_options.items():
        setattr(session, key, value)
    log = _mlflow_logger(f"{backend_name}-{model.name}") if tracked else None
    epoch = [0]
    logging_seconds: list[float] = []

    def run(xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        started = time.perf_counter()
        for x, y in zip(xs, ys):
            session.train_step(x, y)
        loss = session.end_epoch()["loss"]  # the one host sync per block (per epoch)
        if log is not None:
            epoch[0] += 1
            seconds = time.perf_counter() - started
            log({"train/loss": loss, "system/epoch_seconds": seconds,
                 "system/samples_per_second": len(xs) * model.batch / seconds}, epoch[0])
            logging_seconds.append(time.perf_counter() - started - seconds)

    name = f"ours:{backend_name}" + ("+mlflow" if tracked else "")
    return Contender(name, run, lambda x, y: session.evaluate(x, y)["loss"],
                     logging_seconds if tracked else None)


_STORE: list[str] = []


def _mlflow_logger(name: str) -> Callable[[dict[str, float], int], None]:
    """The trainer's per-epoch logging (``RunLogger.log_metrics`` with the peak RSS) into a
    SQLite store in a temporary folder (one per process: creating one costs seconds)."""
    from orchestrator.orchestration.trainer import peak_rss_mb
    from orchestrator.tracking.runs import RunLogger
    from orchestrator.tracking.store import ensure_store, experiment_id

    if not _STORE:
        folder = tempfile.mkdtemp(prefix="orchestrator-bench-")
        atexit.register(shutil.rmtree, folder, True)
        _STORE.append(ensure_store(f"sqlite:///{folder}/mlflow.db"))
    uri = _STORE[0]
    logger = RunLogger(uri, experiment_id(f"bench-{name}", uri), run_name=name, tags={})

    def log(metrics: dict[str, float], step: int) -> None:
        logger.log_metrics({**metrics, "system/peak_rss_mb": peak_rss_mb()}, step=step)
    return log


# --- hand-written torch ---------------------------------------------------------------------


def plain_torch(model: ModelCase) -> Contender:
    import torch
    from torch import nn
    from torch.nn import functional as F

    w = {k: torch.from_numpy(v) for k, v in weights(model).items()}

    def lstm(n_in: int, units: int, prefixes: list[str]) -> nn.LSTM:
        layer = nn.LSTM(n_in, units, batch_first=True, bidirectional=len(prefixes) == 2)
        with torch.no_grad():
            for prefix, suffix in zip(prefixes, ("", "_reverse")):
                getattr(layer, f"weight_ih_l0{suffix}").copy_(w[f"{prefix}.kernel"].T)
                getattr(layer, f"weight_hh_l0{suffix}").copy_(w[f"{prefix}.recurrent_kernel"].T)
                getattr(layer, f"bias_ih_l0{suffix}").copy_(w[f"{prefix}.bias"])
                # one bias, as in the canonical LSTM: the second is zero and not trained
                getattr(layer, f"bias_hh_l0{suffix}").zero_().requires_grad_(False)
        return layer

    def dense(prefix: str) -> nn.Linear:
        kernel = w[f"{prefix}.kernel"]
        layer = nn.Linear(kernel.shape[0], kernel.shape[1])
        with torch.no_grad():
            layer.weight.copy_(kernel.T)
            layer.bias.copy_(w[f"{prefix}.bias"])
        return layer

    if model.name == "har":
        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstms = nn.ModuleList([lstm(6 if i == 0 else 64, 32,
                                                 [f"{i}.forward", f"{i}.backward"])
                                            for i in range(3)])
                self.fc = dense("3")

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                for layer in self.lstms[:-1]:
                    x, _ = layer(x)
                _, (h, _) = self.lstms[-1](x)
                p = torch.softmax(self.fc(torch.cat([h[0], h[1]], -1)), -1)
                return p

        def loss_of(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = out.clamp(1e-7, 1 - 1e-7)
            return -torch.log(p[torch.arange(len(y)), y]).mean()
    else:
        class Net(nn.Module):  # type: ignore[no-redef]
            def __init__(self) -> None:
                super().__init__()
                self.embedding = nn.Embedding.from_pretrained(w["0.embeddings"], freeze=False)
                self.lstm = lstm(64, 256, ["1"])
                self.fc = dense("2")

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.fc(self.lstm(self.embedding(x))[0])

        def loss_of(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    net = Net().train()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=LR,
                           eps=ADAM_EPS, foreach=True)

    def run(xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        total = torch.zeros(())
        for x, y in zip(xs, ys):
            opt.zero_grad(set_to_none=True)
            loss = loss_of(net(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            opt.step()
            total = total + loss.detach()
        total.item()

    def loss(x: np.ndarray, y: np.ndarray) -> float:
        with torch.no_grad():
            return float(loss_of(net(torch.from_numpy(x)), torch.from_numpy(y)))
    return Contender("plain:torch", run, loss)


# --- hand-written Keras (TensorFlow, or torch under KERAS_BACKEND=torch) --------------------


def keras_model(model: ModelCase) -> Any:
    """The network as plain Keras layers, loaded with the canonical weights (Keras' layouts
    are the canonical ones)."""
    import keras

    w = weights(model)
    if model.name == "har":
        inputs = keras.Input((model.timesteps, 6))
        h, layers = inputs, []
        for i in range(3):
            layer = keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=i < 2))
            h = layer(h)
            layers.append((layer, i))
        dense = keras.layers.Dense(7, activation="softmax")
        outputs = dense(h)
        for layer, i in layers:
            for cell, prefix in ((layer.forward_layer.cell, f"{i}.forward"),
                                 (layer.backward_layer.cell, f"{i}.backward")):
                _assign_cell(cell, w, prefix)
        dense.kernel.assign(w["3.kernel"])
        dense.bias.assign(w["3.bias"])
    else:
        inputs = keras.Input((model.timesteps,), dtype="int32")
        embedding = keras.layers.Embedding(VOCAB, 64)
        lstm = keras.layers.LSTM(256, return_sequences=True)
        dense = keras.layers.Dense(VOCAB)
        outputs = dense(lstm(embedding(inputs)))
        embedding.embeddings.assign(w["0.embeddings"])
        _assign_cell(lstm.cell, w, "1")
        dense.kernel.assign(w["2.kernel"])
        dense.bias.assign(w["2.bias"])
    return keras.Model(inputs, outputs)


def _assign_cell(cell: Any, w: dict[str, np.ndarray], prefix: str) -> None:
    cell.kernel.assign(w[f"{prefix}.kernel"])
    cell.recurrent_kernel.assign(w[f"{prefix}.recurrent_kernel"])
    cell.bias.assign(w[f"{prefix}.bias"])


def _keras_loss(model: ModelCase) -> Any:
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=model.name == "char")


def plain_tensorflow(model: ModelCase, jit_compile: bool = False) -> Contender:
    import keras
    import tensorflow as tf

    net = keras_model(model)
    opt = keras.optimizers.Adam(LR, epsilon=ADAM_EPS)
    opt.build(net.trainable_variables)
    loss_fn = _keras_loss(model)

    @tf.function(reduce_retracing=True, jit_compile=jit_compile)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, net(x, training=True))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    dtype = np.int32 if model.name == "char" else np.float32

    def run(xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        total = None
        for x, y in zip(xs, ys):
            loss = step(tf.constant(x.astype(dtype)), tf.constant(y.astype(np.int32)))
            total = loss if total is None else total + loss
        float(total)

    def loss(x: np.ndarray, y: np.ndarray) -> float:
        return float(loss_fn(y.astype(np.int32), net(x.astype(dtype), training=False)))
    return Contender("plain:tensorflow" + ("+xla" if jit_compile else ""), run, loss)


def keras_torch(model: ModelCase) -> Contender:
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError("keras:torch needs KERAS_BACKEND=torch before keras is imported")
    net = keras_model(model)
    net.compile(optimizer=keras.optimizers.Adam(LR, epsilon=ADAM_EPS), loss=_keras_loss(model))
    dtype = np.int32 if model.name == "char" else np.float32

    def run(xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        for x, y in zip(xs, ys):
            net.train_on_batch(x.astype(dtype), y)  # returns the loss as a Python float

    def loss(x: np.ndarray, y: np.ndarray) -> float:
        return float(net.test_on_batch(x.astype(dtype), y))
    return Contender("keras:torch", run, loss)


# --- the measurement ------------------------------------------------------------------------


def race(contenders: list[Contender], model: ModelCase, *, block: int, rounds: int,
         warmup: int = 2) -> dict[str, Any]:
    """Blocks of ``block`` steps, contenders alternating (the order rotates every round), for
    ``rounds`` rounds after ``warmup`` untimed steps each; returns seconds per step of every
    block per contender and each contender's evaluation loss on the first batch after it."""
    xs, ys = model.batches(block)
    for c in contenders:  # compilation, allocators; same steps for every contender
        c.run(xs[:warmup], ys[:warmup])
    per_step: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(rounds):
        shift = r % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            started = time.perf_counter()
            c.run(xs, ys)
            per_step[c.name].append((time.perf_counter() - started) / block)
    losses = {c.name: float(c.loss(xs[0], ys[0])) for c in contenders}
    logging = {c.name: c.logging_seconds[-rounds:] for c in contenders
               if c.logging_seconds is not None}
    return {"seconds_per_step": per_step, "loss_after": losses, "block": block,
            "logging_seconds": logging,
            "rounds": rounds, "steps_each": warmup + block * rounds}
