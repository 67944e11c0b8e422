r"""How much the training seed moves the by-subject HAR accuracy, and what averaging seeds buys.

Trains experiments/har_better.yaml's network (one Bi-LSTM(64), dropout 0.5, Adam 1e-3 with a
cosine decay to 5 %, 20 epochs, batch 64) in plain torch on each of the 5 grouped folds of
experiments/cv/har_better_cv.yaml, once per seed, and prints each seed's accuracy on the fold's
unseen subjects, their mean, and the accuracy of the ensemble (the mean of the seeds' class
probabilities). About 75 s per fold and seed on one core::

    .venv/bin/python examples/har_seed_ensemble.py --seeds 0 1 2
    .venv/bin/python examples/har_seed_ensemble.py --seeds 0 \
        -o data.center=window -o data.magnitudes=true
    .venv/bin/python examples/har_seed_ensemble.py --seeds 0 1 2 3 4 --mirror --save probs.npz

``--mirror`` also predicts each test window's mirror image (``data.augment.mirror``); ``--save``
keeps every fold's test labels and each seed's probabilities, to combine them afterwards.
"""

from __future__ import annotations

import argparse
import math

import numpy as np


def _labels(y) -> np.ndarray:
    """Class indices from one-hot rows or from indices."""
    y = np.asarray(y)
    return y.argmax(-1) if y.ndim > 1 else y


def train(split, units: int, dropout: float, epochs: int, seed: int,
          views: list[np.ndarray]) -> list[np.ndarray]:
    """Class probabilities on each of ``views`` (the split's test windows, or transformations of
    them) of one network trained with ``seed``."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.tensor(split.x_train, dtype=torch.float32)
    labels = _labels(split.y_train)
    y = torch.tensor(labels, dtype=torch.long)
    classes = int(labels.max()) + 1

    class BiLSTM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(x.shape[-1], units, batch_first=True, bidirectional=True)
            self.drop = torch.nn.Dropout(dropout)
            self.out = torch.nn.Linear(2 * units, classes)

        def forward(self, inputs):
            h, _ = self.lstm(inputs)  # the forward pass's last step, the backward pass's first
            return self.out(self.drop(torch.cat([h[:, -1, :units], h[:, 0, units:]], -1)))

    net, batch, lr = BiLSTM(), 64, 1e-3
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps, step = epochs * math.ceil(len(x) / batch), 0
    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            cosine = 0.5 * (1 + math.cos(math.pi * step / steps))
            opt.param_groups[0]["lr"] = lr * (0.05 + 0.95 * cosine)
            idx = order[start:start + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
            step += 1
    net.eval()
    with torch.no_grad():
        return [torch.softmax(net(torch.tensor(v, dtype=torch.float32)), -1).numpy()
                for v in views]


def main() -> int:
    import torch

    from orchestrator.config.loader import load
    from orchestrator.plugins import manager as plugin_manager

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--mirror", action="store_true",
                        help="also predict on the mirror images of the test windows "
                             "(data.augment.mirror), saved as fold<k>_seed<s>_mirror")
    parser.add_argument("--save", metavar="FILE.npz",
                        help="also write every fold's test labels and each seed's class "
                             "probabilities (fold<k>_truth, fold<k>_seed<s>)")
    parser.add_argument("-o", dest="overrides", action="append", default=[],
                        help="an override of experiments/cv/har_better_cv.yaml (KEY=VALUE)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp = load(["experiments/cv/har_better_cv.yaml"], overrides=args.overrides)[0]
    task = plugin_manager.tasks().get(exp.task)()
    splits = task.prepare(exp.data, seed=exp.seeds[0], folds=5).splits
    means, ensembles, saved = [], [], {}
    for fold in args.folds:
        split = splits[fold]
        truth = _labels(split.y_test)
        views = [split.x_test]
        mirror = exp.data.augment.mirror
        if args.mirror and mirror and split.info.get("scaler_mean") is not None:
            mean, std = np.asarray(split.info["scaler_mean"]), np.asarray(split.info["scaler_std"])
            sign = np.ones(len(mean))
            sign[:len(mirror)] = mirror
            views.append((((split.x_test * std + mean) * sign - mean) / std).astype(np.float32))
        outputs = [train(split, exp.model.units, exp.model.dropout, exp.train.epochs, seed,
                         views) for seed in args.seeds]
        probs = [o[0] for o in outputs]
        if len(views) > 1:
            saved.update({f"fold{fold}_seed{s}_mirror": o[1]
                          for s, o in zip(args.seeds, outputs)})
        saved[f"fold{fold}_truth"] = truth
        saved.update({f"fold{fold}_seed{s}": p for s, p in zip(args.seeds, probs)})
        if args.save:
            np.savez_compressed(args.save, **saved)
        single = [float(np.mean(p.argmax(-1) == truth)) for p in probs]
        means.append(np.mean(single))
        ensembles.append(float(np.mean(np.mean(probs, axis=0).argmax(-1) == truth)))
        print(f"fold {fold}: seeds {' '.join(f'{a:.4f}' for a in single)}, mean "
              f"{means[-1]:.4f}, ensemble of {len(probs)} {ensembles[-1]:.4f}", flush=True)
    print(f"over folds {args.folds}: mean of single seeds {np.mean(means):.4f}, "
          f"ensemble {np.mean(ensembles):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
