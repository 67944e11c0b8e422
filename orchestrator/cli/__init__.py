"""The ``orchestrator`` command line: one module per group of sub-commands.

Each command module imports heavy libraries (frameworks, MLflow, Optuna) only when its command
runs, so ``--help``, ``validate`` and ``plugins`` stay fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.cli import compare, experiments, parity, plugins, server, tuning, ui

COMMAND_MODULES = (plugins, parity, experiments, compare, tuning, ui, server)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Run, tune and compare deep-learning experiments on PyTorch and TensorFlow "
                    "with one canonical meaning per component and hyperparameter.")
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)

