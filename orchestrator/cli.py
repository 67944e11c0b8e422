"""The ``orchestrator`` command line. Sub-commands import heavy libraries only when they run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from orchestrator import __version__, catalogue


def _cmd_plugins(args: argparse.Namespace) -> int:
    from orchestrator import plugin_manager

    state = plugin_manager.state()
    backends = state.backends.infos()
    if args.json:
        print(json.dumps({
            "backends": [{
                "name": b.name, "plugin": b.plugin, "loader": b.loader, "summary": b.summary,
                "versions": b.versions(),
                "components": {k: list(v) for k, v in b.components.items()},
                "missing": {k: list(v) for k, v in b.missing().items()},
            } for b in backends],
            "failures": [{"name": f.name, "target": f.target, "stage": f.stage,
                          "error": f.error} for f in state.failures],
            "components": {k: list(v) for k, v in catalogue.all_names().items()},
        }, indent=2))
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Backends", title_justify="left")
    for column in ("backend", "plugin", "framework versions", "summary"):
        table.add_column(column)
    for b in backends:
        versions = ", ".join(f"{d} {v or '(not installed)'}" for d, v in b.versions().items())
        table.add_row(b.name, b.plugin, versions, b.summary)
    console.print(table)

    matrix = Table(title="Components (canonical names)", title_justify="left")
    matrix.add_column("kind")
    matrix.add_column("component")
    for b in backends:
        matrix.add_column(b.name, justify="center")
    for kind, names in catalogue.all_names().items():
        for name in names:
            marks = ["[green]yes[/]" if b.provides(kind, name) else "[red]no[/]"
                     for b in backends]
            matrix.add_row(kind, name, *marks)
    console.print(matrix)

    for f in state.failures:
        where = f" ({f.target})" if f.target else ""
        console.print(f"[red]plugin {f.name!r}{where} failed at {f.stage}:[/] {f.error}",
                      highlight=False)
        if args.verbose:
            console.print(f.details, highlight=False)
    if not backends:
        console.print("[yellow]no backend is installed[/]")
    return 0


def _cmd_parity(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from orchestrator import parity, plugin_manager

    registry = plugin_manager.backends()
    backends = tuple(args.backends or registry.names())
    for name in backends:
        registry.info(name)  # unknown names fail here, with the closest match
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Run, tune and compare deep-learning experiments on PyTorch and TensorFlow "
                    "with one canonical meaning per component and hyperparameter.")
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list backends, their framework versions and components",
                       description="List the installed backend plugins, the framework versions "
                                   "they run on, and which canonical components each provides. "
                                   "Imports no framework.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show full tracebacks of plugins that failed to load")
    p.set_defaults(func=_cmd_plugins)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
