"""What every command shares: loading experiment files, one-line errors with exit 2, output."""

from __future__ import annotations

import argparse
import sys

EXIT_BAD_INPUT = 2


def load_experiments(args: argparse.Namespace):
    """Resolve the experiment files; bad input ends the command with one line and status 2."""
    from orchestrator.config.loader import load
    from orchestrator.redaction import remember

    remember(*(args.override or []))  # -o tune.storage=postgresql://user:password@...
    experiments = load(args.files, args.override or [])
    remember(*(e.tune.storage for e in experiments if e.tune is not None))
    return experiments


def bad_input(error: BaseException | str) -> int:
    """One line on stderr, without any secret, and status 2."""
    from orchestrator.redaction import redact_text

    line = " ".join(redact_text(str(error)).split("\n"))
    print(f"error: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT


# thread counts read by this project, the math libraries and the frameworks: a value that is not
# a whole number >= 1 crashed a worker deep inside a framework; here it is one line first
THREAD_VARIABLES = ("ORCHESTRATOR_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def environment_problem() -> str | None:
    """A thread-count variable that is set to something other than a whole number >= 1, or a
    cache bound that is not a whole number of megabytes."""
    import os

    from orchestrator.data.cache import MAX_MB_VARIABLE, max_mb_problem, setting

    problem = max_mb_problem(os.environ.get(MAX_MB_VARIABLE))
    if problem:
        return problem
    for name in THREAD_VARIABLES:
        text = os.environ.get(name)
        if text is None or not text.strip():
            continue
        if not text.strip().isdecimal() or int(text) < 1:  # int() refuses '²' (isdigit)
            return f"{setting(name, text)}: must be a whole number >= 1 (or unset)"
    return None


def input_errors() -> tuple[type[Exception], ...]:
    from orchestrator.config.loader import ConfigError
    from orchestrator.data.errors import DataError

    return (ConfigError, DataError)


def make_console():
    """A console that does not squeeze tables to 80 columns when output is a file or pipe."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def add_experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="experiment YAML files")
    p.add_argument("-o", "--override", action="append", metavar="KEY=VALUE",
                   help="override a config value by dotted key, e.g. -o train.epochs=3 "
                        "(repeatable; applied to every file)")
