"""``parity``: one network trained on several backends from the same weights and batches."""

from __future__ import annotations

import argparse

from orchestrator.canonical import catalogue
from orchestrator.cli.common import bad_input


def _cmd_parity(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from orchestrator.comparison import parity
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.plugins.registry import RegistryError

    registry = plugin_manager.backends()
    backends = tuple(args.backends or registry.available_names())
    try:
        for name in backends:
            registry.check_available(name)  # unknown names fail here, with the closest match
    except RegistryError as error:
        return bad_input(error)
    console = Console()
    console.print(f"Training the lecture's normalization network (64 -> 64 -> 32 -> 10, "
                  f"{args.norm} norm) on scikit-learn digits with {args.optimizer}, "
                  f"{args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, {args.dtype}, "
                  f"on {', '.join(backends)}: same initial weights, same batches, one process "
                  "per backend.", highlight=False)
    runs = parity.run(backends, norm=args.norm, optimizer=args.optimizer, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, dtype=args.dtype)
    table = Table(title="train/loss and val/accuracy per epoch", title_justify="left")
    table.add_column("epoch", justify="right")
    for run in runs:
        table.add_column(f"{run.backend} loss", justify="right")
        table.add_column(f"{run.backend} val acc", justify="right")
    for epoch in range(args.epochs):
        cells = []
        for run in runs:
            cells += [f"{run.losses[epoch]:.6f}", f"{run.val_accuracy[epoch]:.4f}"]
        table.add_row(str(epoch + 1), *cells)
    console.print(table)
    for run in runs:
        versions = ", ".join(f"{k} {v}" for k, v in run.versions.items())
        console.print(f"{run.backend} ({versions}): {run.seconds:.2f} s", highlight=False)
    for other in runs[1:]:
        diff = parity.max_weight_difference(runs[0], other)
        console.print(f"final weights, {other.backend} vs {runs[0].backend}: max relative "
                      f"difference {diff:.2e}; time ratio {other.seconds / runs[0].seconds:.2f}",
                      highlight=False)
    return 0



def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="train one network on several backends and compare",
                       description="Train the lecture's normalization network on scikit-learn "
                                   "digits on each backend from the same initial weights and "
                                   "batches, and print the loss curves side by side.")
    p.add_argument("--backends", nargs="+", metavar="NAME", help="default: every backend")
    p.add_argument("--norm", choices=catalogue.names("norm"), default="batch")
    p.add_argument("--optimizer", choices=catalogue.names("optimizer"), default="adam")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                   help="float64 (default) shows the math agreeing; in float32 Adam turns "
                        "rounding noise in zero-gradient weights (a bias just before batch "
                        "norm) into visible differences")
    p.set_defaults(func=_cmd_parity)
