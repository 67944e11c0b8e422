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
            "tasks": [{"name": name, "plugin": state.tasks.plugin(name),
                       "summary": state.tasks.get(name).summary}
                      for name in state.tasks.names()],
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

    tasks = Table(title="Tasks", title_justify="left")
    for column in ("task", "plugin", "summary"):
        tasks.add_column(column)
    for name in state.tasks.names():
        tasks.add_row(name, state.tasks.plugin(name), state.tasks.get(name).summary)
    console.print(tasks)

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


EXIT_BAD_INPUT = 2


def _load(args: argparse.Namespace):
    """Resolve the experiment files; bad input ends the command with one line and status 2."""
    from orchestrator.config.loader import load

    return load(args.files, args.override or [])


def _bad_input(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _input_errors() -> tuple[type[Exception], ...]:
    from orchestrator.config.loader import ConfigError
    from orchestrator.data.errors import DataError

    return (ConfigError, DataError)


def _jobs(text: str) -> int:
    from orchestrator.runner import parse_jobs

    try:
        return parse_jobs(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _console():
    """A console that does not squeeze tables to 80 columns when output is a file or pipe."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        experiments = _load(args)
    except _input_errors() as error:
        return _bad_input(error)
    files = sorted({e.file for e in experiments})
    for file in files:
        variants = [e for e in experiments if e.file == file]
        print(f"{file}: ok ({len(variants)} variant(s), task {variants[0].task})")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from orchestrator.plan import make_plan, plan_table, study_tables

    try:
        experiments = _load(args)
    except _input_errors() as error:
        return _bad_input(error)
    console = _console()
    console.print(plan_table(make_plan(experiments)))
    for table in study_tables(experiments):
        console.print(table)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _cmd_plan(args)

    from orchestrator.plan import make_plan
    from orchestrator.runner import default_jobs, run_experiments
    from orchestrator.summary import outcome_line, summary_table

    console = _console()
    try:
        experiments = _load(args)
        plan = make_plan(experiments)
        try:
            jobs = args.jobs or default_jobs()
        except ValueError as error:
            return _bad_input(error)
        interactive = console.is_terminal and not args.quiet
        console.print(f"{len(plan)} run(s) from {len({e.file for e in experiments})} file(s)",
                      highlight=False)
        outcomes = run_experiments(experiments, interactive=interactive,
                                   jobs=jobs,
                                   report=lambda o: console.print(outcome_line(o),
                                                                  highlight=False))
    except _input_errors() as error:
        return _bad_input(error)
    console.print(summary_table(outcomes))
    if len(outcomes) < len(plan) or any(o.status == "KILLED" for o in outcomes):
        console.print(f"interrupted: {len(outcomes)} of {len(plan)} run(s) done or stopped")
        return 130
    return 1 if any(o.status != "FINISHED" for o in outcomes) else 0


def _tuning_experiments(args: argparse.Namespace):
    from orchestrator.config.loader import ConfigError

    experiments = _load(args)
    missing = sorted({e.file for e in experiments if e.tune is None})
    if missing:
        raise ConfigError(missing[0], "tune", "is required by this command (a search space, "
                                              "metric, direction and trial budget)")
    return experiments


def _cmd_tune(args: argparse.Namespace) -> int:
    from orchestrator.tuning.run import results_table, tune

    console = _console()
    try:
        experiments = _tuning_experiments(args)
        if args.dry_run:
            from orchestrator.plan import study_tables

            for table in study_tables(experiments, args.storage):
                console.print(table)
            return 0
        results = tune(experiments, workers=args.workers, storage=args.storage,
                       report=lambda text: console.print(text, highlight=False))
    except _input_errors() as error:
        return _bad_input(error)
    except KeyboardInterrupt:
        console.print("interrupted: rerun the same command to continue the studies")
        return 130
    console.print(results_table(results))
    for result in results:
        console.print(f"trials of {result.study_name}: {result.parquet}", highlight=False)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from orchestrator.tuning.run import join

    try:
        experiments = _tuning_experiments(args)
        ran = join(experiments, args.storage)
    except _input_errors() as error:
        return _bad_input(error)
    except ValueError as error:  # no such study yet
        return _bad_input(error)
    except KeyboardInterrupt:
        return 130
    print(f"worker done: {ran} trial(s) run here")
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from orchestrator.tracking.store import ensure_store, is_embedded, mlruns_root

    uri = ensure_store()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(args.port)]
    if is_embedded(uri):
        # clients that log through this server (MLFLOW_TRACKING_URI=http://...) upload their
        # artifacts here too, not to ./mlartifacts wherever the server was started
        command += ["--artifacts-destination", str(mlruns_root() / "artifacts")]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store: {uri}); Ctrl-C stops it",
          flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def _add_experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="experiment YAML files")
    p.add_argument("-o", "--override", action="append", metavar="KEY=VALUE",
                   help="override a config value by dotted key, e.g. -o train.epochs=3 "
                        "(repeatable; applied to every file)")


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

    p = sub.add_parser("validate", help="check experiment files (no data, no MLflow)",
                       description="Validate experiment files: schema, component names on every "
                                   "chosen backend, task options. Exit status 2 on the first "
                                   "error, printed as FILE: key.path: problem.")
    _add_experiment_args(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("plan", help="print the runs an invocation would make",
                       description="Validate, then print the matrix of runs "
                                   "(experiment x variant x backend x seed) that `run` makes, "
                                   "and for files with a tune: section the studies that `tune` "
                                   "makes. Touches neither data nor MLflow.")
    _add_experiment_args(p)
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("run", help="run experiments, tracked in MLflow",
                       description="Run every experiment on every backend and seed, each run "
                                   "in its own process, tracked in MLflow (embedded SQLite "
                                   "store under mlruns/ unless MLFLOW_TRACKING_URI is set).")
    _add_experiment_args(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop (= plan)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                   help="runs side by side, each a process with its share of the cores "
                        "(default: ORCHESTRATOR_JOBS, else the cores, at most 4; 1: one after "
                        "another, each with every core)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("tune", help="tune with Optuna: one study per backend, trials in MLflow",
                       description="Run the Optuna study of each experiment's tune: section, "
                                   "one per backend, to its total trial budget. Rerunning the "
                                   "same command resumes the studies.")
    _add_experiment_args(p)
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes on this machine (0: create the studies only)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the studies and their search spaces and stop (touches neither "
                        "data, MLflow nor the storage)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage: sqlite:///file.db, postgresql://..., mysql://..., "
                        "journal:/path/file.log (default: tune.storage, else SQLite under "
                        "mlruns/)")
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("worker", help="join existing studies and run trials",
                       description="Join the studies that `orchestrator tune` created in the "
                                   "given storage and run trials until their budgets are done. "
                                   "Start any number, on any machine that reaches the storage "
                                   "and the MLflow tracking server.")
    _add_experiment_args(p)
    p.add_argument("--storage", metavar="URL", required=True, help="Optuna storage URL")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against the same store")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=_cmd_ui)
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
