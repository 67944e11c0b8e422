"""``validate``, ``plan`` and ``run``: experiment files checked, planned and run."""

from __future__ import annotations

import argparse

from orchestrator.cli.common import (
    add_experiment_args,
    bad_input,
    input_errors,
    load_experiments,
    make_console,
)


def jobs_arg(text: str) -> int:
    from orchestrator.orchestration.parent import parse_jobs

    try:
        return parse_jobs(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        experiments = load_experiments(args)
    except input_errors() as error:
        return bad_input(error)
    files = sorted({e.file for e in experiments})
    for file in files:
        variants = [e for e in experiments if e.file == file]
        print(f"{file}: ok ({len(variants)} variant(s), task {variants[0].task})")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from orchestrator.orchestration.plan import make_plan, plan_table
    from orchestrator.tuning.overview import study_tables

    try:
        experiments = load_experiments(args)
    except input_errors() as error:
        return bad_input(error)
    console = make_console()
    console.print(plan_table(make_plan(experiments)))
    for table in study_tables(experiments):
        console.print(table)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _cmd_plan(args)

    from orchestrator.comparison.summary_run import log_summaries
    from orchestrator.comparison.terminal import outcome_line, summary_table
    from orchestrator.orchestration.parent import default_jobs, run_experiments
    from orchestrator.orchestration.plan import make_plan

    console = make_console()
    try:
        experiments = load_experiments(args)
        plan = make_plan(experiments)
        try:
            jobs = args.jobs or default_jobs()
        except ValueError as error:
            return bad_input(error)
        interactive = console.is_terminal and not args.quiet
        console.print(f"{len(plan)} run(s) from {len({e.file for e in experiments})} file(s)",
                      highlight=False)
        outcomes = run_experiments(experiments, interactive=interactive,
                                   jobs=jobs,
                                   report=lambda o: console.print(outcome_line(o),
                                                                  highlight=False))
    except input_errors() as error:
        return bad_input(error)
    from orchestrator.tracking.store import tracking_uri

    log_summaries(tracking_uri(), plan, outcomes)
    console.print(summary_table(outcomes))
    if len(outcomes) < len(plan) or any(o.status == "KILLED" for o in outcomes):
        console.print(f"interrupted: {len(outcomes)} of {len(plan)} run(s) done or stopped")
        return 130
    return 1 if any(o.status != "FINISHED" for o in outcomes) else 0



def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check experiment files (no data, no MLflow)",
                       description="Validate experiment files: schema, component names on every "
                                   "chosen backend, task options. Exit status 2 on the first "
                                   "error, printed as FILE: key.path: problem.")
    add_experiment_args(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("plan", help="print the runs an invocation would make",
                       description="Validate, then print the matrix of runs "
                                   "(experiment x variant x backend x seed) that `run` makes, "
                                   "and for files with a tune: section the studies that `tune` "
                                   "makes. Touches neither data nor MLflow.")
    add_experiment_args(p)
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("run", help="run experiments, tracked in MLflow",
                       description="Run every experiment on every backend and seed, each run "
                                   "in its own process, tracked in MLflow (embedded SQLite "
                                   "store under mlruns/ unless MLFLOW_TRACKING_URI is set).")
    add_experiment_args(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop (= plan)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-j", "--jobs", type=jobs_arg, default=None, metavar="N",
                   help="runs side by side, each a process with its share of the cores "
                        "(default: ORCHESTRATOR_JOBS, else the cores, at most 4; 1: one after "
                        "another, each with every core)")
    p.set_defaults(func=_cmd_run)
