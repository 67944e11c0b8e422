"""``tune`` and ``worker``: Optuna studies per backend and the processes that run their trials."""

from __future__ import annotations

import argparse

from orchestrator.cli.experiments import add_executor_args
from orchestrator.cli.common import (
    add_experiment_args,
    bad_input,
    input_errors,
    load_experiments,
    make_console,
)


def _tuning_experiments(args: argparse.Namespace):
    from orchestrator.config.loader import ConfigError

    experiments = load_experiments(args)
    missing = sorted({e.file for e in experiments if e.tune is None})
    if missing:
        raise ConfigError(missing[0], "tune", "is required by this command (a search space, "
                                              "metric, direction and trial budget)")
    return experiments


def _cmd_tune(args: argparse.Namespace) -> int:
    from orchestrator.cli.experiments import executor_settings
    from orchestrator.orchestration.executors.base import ExecutorError, load_executor
    from orchestrator.tuning.run import results_table, tune

    console = make_console()
    try:
        experiments = _tuning_experiments(args)
        if args.dry_run:
            from orchestrator.tuning.overview import study_tables

            for table in study_tables(experiments, args.storage):
                console.print(table)
            return 0
        executor = load_executor(executor_settings(experiments, args))
        try:
            results = tune(experiments, workers=args.workers, storage=args.storage,
                           report=lambda text: console.print(text, highlight=False),
                           executor=executor,
                           verdict=not args.no_verdict and args.workers > 0)
        finally:
            executor.close()
    except (*input_errors(), ExecutorError) as error:
        return bad_input(error)
    except KeyboardInterrupt:
        console.print("interrupted: rerun the same command to continue the studies")
        return 130
    console.print(results_table(results))
    for result in results:
        console.print(f"trials of {result.study_name}: {result.parquet}", highlight=False)
    # a study without a single complete trial found nothing (e.g. every trial failed on a
    # metric that is never reported): say so, and exit non-zero so a script notices
    empty = [r for r in results if r.best_value is None] if args.workers > 0 else []
    for result in empty:
        counts = ", ".join(f"{v} {k}" for k, v in result.counts.items() if v)
        console.print(f"error: study {result.study_name} has no complete trial ({counts}); "
                      f"the trials' fail_reason says why: {result.parquet}", highlight=False)
    return 1 if empty else 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from orchestrator.tuning.run import join

    try:
        experiments = _tuning_experiments(args)
        ran = join(experiments, args.storage)
    except input_errors() as error:
        return bad_input(error)
    except ValueError as error:  # no such study yet
        return bad_input(error)
    except KeyboardInterrupt:
        return 130
    print(f"worker done: {ran} trial(s) run here")
    return 0



def _workers(text: str) -> int:
    """``--workers``: a whole number from 0 (create the studies only) up."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 (create the studies "
                                         f"only) or more")
    return value


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="tune with Optuna: one study per variant and backend, "
                                    "trials in MLflow, then a held-out verdict",
                       description="Run the Optuna studies of each experiment's tune: section "
                                   "(one per matrix variant, backend and nested outer fold) to "
                                   "their total trial budget, then the verdict: each study's "
                                   "best retrained with several seeds and scored on the "
                                   "untouched test part, with intervals and paired "
                                   "comparisons. Rerunning the same command resumes.")
    add_experiment_args(p)
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="tuning workers, where the executor runs them (local: processes on "
                        "this machine; 0: create the studies only)")
    p.add_argument("--no-verdict", action="store_true",
                   help="skip the verdict (retraining each study's best with tune.verdict.seeds "
                        "seeds and scoring it on the untouched test part)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the studies and their search spaces and stop (touches neither "
                        "data, MLflow nor the storage)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage: sqlite:///file.db, postgresql://..., mysql://..., "
                        "journal:/path/file.log (default: tune.storage, else SQLite under "
                        "mlruns/)")
    add_executor_args(p)
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("worker", help="join existing studies and run trials",
                       description="Join the studies that `orchestrator tune` created in the "
                                   "given storage and run trials until their budgets are done. "
                                   "Start any number, on any machine that reaches the storage "
                                   "and the MLflow tracking server.")
    add_experiment_args(p)
    p.add_argument("--storage", metavar="URL", required=True, help="Optuna storage URL")
    p.set_defaults(func=_cmd_worker)
