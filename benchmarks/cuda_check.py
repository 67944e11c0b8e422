"""The torch backend on a CUDA GPU against itself on the CPU: cuDNN LSTM parity and speed.

Run on a machine with a CUDA build of torch (``python benchmarks/cuda_check.py``). For the
character model of experiments/text.yaml and the lecture's HAR network (three stacked
Bi-LSTMs, without its dropout, whose masks each device draws from its own generator) it
prints, from the same initial weights and the same batches:

- forward outputs on CUDA vs CPU, with float32 as IEEE float32 (the backend's default) and with
  cuDNN's TF32 (ORCHESTRATOR_TORCH_TF32=1): max |difference| relative to the output scale;
- the training losses of a few dozen Adam steps on CUDA vs CPU;
- training steps per second on CUDA / on the CPU, measured side by side in this run;
- the vanishing-gradient task's gradient norm per time step (a VJP in evaluation mode, where
  cuDNN has no RNN backward), CUDA vs CPU.

The conformance kit is the pass/fail check (``pytest tests/test_conformance_torch.py`` on the
GPU machine); this script shows the size of the differences and the speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from orchestrator_torch.backend import TorchBackend

from orchestrator.canonical import catalogue, networks
from orchestrator.canonical.initializers import init_weights
from orchestrator.contract.backend import Resources


def cases(batch: int) -> list[tuple[str, object, np.ndarray, np.ndarray, str]]:
    rng = np.random.default_rng(0)
    text = networks.char_network(65, 100, embedding_dim=64, units=256)
    x_text = rng.integers(0, 65, size=(batch, 100))
    y_text = rng.integers(0, 65, size=(batch, 100))
    har = networks.har_network(200, 6, 7, dropout=0.0)  # dropout masks are per-device draws
    x_har = rng.standard_normal((batch, 200, 6)).astype(np.float32)
    y_har = np.eye(7, dtype=np.float32)[rng.integers(0, 7, size=batch)]
    return [("char LSTM(256), seq 100", text, x_text, y_text, "sparse_categorical_crossentropy"),
            ("HAR 3x Bi-LSTM(32) (no dropout), seq 200", har, x_har, y_har,
             "categorical_crossentropy")]


def set_tf32(on: bool) -> None:
    value = "tf32" if on else "ieee"
    torch.backends.cudnn.rnn.fp32_precision = value
    torch.backends.cudnn.conv.fp32_precision = value
    torch.backends.cuda.matmul.fp32_precision = value


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def train(backend: TorchBackend, spec, weights, x, y, loss_name: str, steps: int,
          batch: int) -> tuple[list[float], float]:
    """Losses of ``steps`` Adam steps (one batch each) and the seconds they took."""
    logits = loss_name.startswith("sparse")  # the char model ends in a linear layer
    loss = catalogue.resolve("loss", loss_name, {"from_logits": True} if logits else None)
    optimizer = catalogue.resolve("optimizer", "adam", {"lr": 1e-3})
    model = backend.build_model(spec, weights)
    session = backend.training_session(model, loss, optimizer, n_train=batch)
    losses = []
    session.train_step(x, y)  # warm-up (cuDNN plans, allocator)
    session.end_epoch()
    model.set_weights(weights)
    session = backend.training_session(model, loss, optimizer, n_train=batch)
    if backend.torch_device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        session.train_step(x, y)
        losses.append(session.end_epoch()["loss"])  # one sync per step, as a logged epoch
    return losses, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check needs a GPU build of torch and a GPU")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, "
          f"cuDNN {torch.backends.cudnn.version()}")
    cpu, gpu = TorchBackend(Resources(device="cpu")), TorchBackend(Resources(device="cuda"))
    for label, spec, x, y, loss_name in cases(args.batch):
        weights = init_weights(spec, seed=0)
        reference = cpu.build_model(spec, weights).predict(x)
        on_gpu = gpu.build_model(spec, weights)
        set_tf32(False)
        ieee = relative(on_gpu.predict(x), reference)
        set_tf32(True)
        tf32 = relative(on_gpu.predict(x), reference)
        set_tf32(False)
        print(f"\n{label}, batch {args.batch}")
        print(f"  forward, CUDA vs CPU, max relative difference: IEEE float32 {ieee:.1e}, "
              f"TF32 {tf32:.1e}")
        cpu_losses, cpu_s = train(cpu, spec, weights, x, y, loss_name, args.steps, args.batch)
        gpu_losses, gpu_s = train(gpu, spec, weights, x, y, loss_name, args.steps, args.batch)
        gap = max(abs(a - b) for a, b in zip(cpu_losses, gpu_losses))
        print(f"  {args.steps} Adam steps: loss {cpu_losses[0]:.5f} -> {cpu_losses[-1]:.5f} "
              f"(CPU), {gpu_losses[0]:.5f} -> {gpu_losses[-1]:.5f} (CUDA); "
              f"max |CPU - CUDA| over the steps {gap:.1e}")
        print(f"  steps/s CUDA / CPU ({torch.get_num_threads()} CPU threads): "
              f"{cpu_s / gpu_s:.1f}")
    eval_mode_gradients(cpu, gpu)


def eval_mode_gradients(cpu: TorchBackend, gpu: TorchBackend) -> None:
    from orchestrator.tasks.vanishing import (
        VanishingData,
        VanishingModel,
        VanishingTask,
        gradient_norm_per_step,
    )

    task = VanishingTask()
    prepared = task.prepare(VanishingData(length=100), seed=0, folds=None)
    split = prepared.splits[0]
    x, y = split.x_test[:256], split.y_test[:256]
    print("\nvanishing task, length 100: gradient norm per time step, CUDA vs CPU")
    for cell in ("rnn", "lstm"):
        spec = task.model_spec(VanishingModel(cell=cell), prepared)
        weights = init_weights(spec, seed=0)
        on_cpu = gradient_norm_per_step(cpu.build_model(spec, weights), x, y)
        on_gpu = gradient_norm_per_step(gpu.build_model(spec, weights), x, y)
        print(f"  {cell}: first step {on_cpu[0]:.3e} / {on_gpu[0]:.3e}, last "
              f"{on_cpu[-1]:.3e} / {on_gpu[-1]:.3e}; max relative difference "
              f"{relative(on_gpu, on_cpu):.1e}")


if __name__ == "__main__":
    main()
