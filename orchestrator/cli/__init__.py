"""The ``orchestrator`` command line: one module per group of sub-commands.

Each command module imports heavy libraries (frameworks, MLflow, Optuna) only when its command
runs, so ``--help``, ``validate`` and ``plugins`` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.cli import cache, compare, experiments, parity, plugins, server, tuning, ui

COMMAND_MODULES = (plugins, parity, experiments, compare, tuning, ui, server, cache)
COMMANDS_THAT_TRAIN = ("run", "tune", "worker", "parity")


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
    import signal

    # Ctrl-C must reach this command: a launcher that left SIGINT blocked (the mask is
    # inherited across exec, and Python does not reset it) would make every Ctrl-C pending
    # forever. An inherited SIG_IGN (a background job) is respected.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from orchestrator.redaction import redact_command_line, redact_stderr, remember

    remember(getattr(args, "storage", None), getattr(args, "backend_store", None))
    if argv is None:  # run as a command: ps must not show the URLs' passwords
        redact_command_line()
    redact_stderr()  # libraries' warnings and log lines may echo a URL
    if args.command in COMMANDS_THAT_TRAIN:
        from orchestrator.cli.common import bad_input, environment_problem

        problem = environment_problem()
        if problem:
            return bad_input(problem)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001  (the last word: one line, or a clean traceback)
        return _last_word(error)


def _last_word(error: Exception) -> int:
    """A broken store or storage is one line and exit 2; anything else a traceback (a bug to
    report) with every secret removed, exit 1."""
    import traceback

    from orchestrator.cli.common import bad_input
    from orchestrator.redaction import redact_text
    from orchestrator.tracking.failures import store_problem

    from orchestrator.tracking.store_checks import StoreError
    from orchestrator.tuning.study import StorageError

    if isinstance(error, (StorageError, StoreError)):
        return bad_input(error)
    problem = store_problem(error)
    if problem is not None:
        return bad_input(problem)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    print(redact_text(text), file=sys.stderr, end="")
    return 1

