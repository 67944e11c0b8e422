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

    import time

    from orchestrator.comparison.terminal import outcome_line
    from orchestrator.orchestration.executors.base import ExecutorError, load_executor
    from orchestrator.orchestration.parent import Schedule, default_jobs, run_experiments
    from orchestrator.orchestration.plan import make_plan

    began = time.perf_counter()
    console = make_console()
    try:
        experiments = load_experiments(args)
        plan = make_plan(experiments)
        try:
            jobs = args.jobs or default_jobs()
        except ValueError as error:
            return bad_input(error)
        interactive = console.is_terminal and not args.quiet
        executor = load_executor(executor_settings(experiments, args))
        console.print(f"{len(plan)} run(s) from {len({e.file for e in experiments})} file(s)"
                      + (f" on executor {executor.name}" if executor.name != "local" else ""),
                      highlight=False)
        outcomes = run_experiments(experiments, interactive=interactive,
                                   jobs=jobs, executor=executor,
                                   report=lambda o: console.print(outcome_line(o),
                                                                  highlight=False))
    except (*input_errors(), ExecutorError) as error:
        return bad_input(error)
    schedule = Schedule.of(outcomes, min(jobs, len(plan)), time.perf_counter() - began) \
        if outcomes else None
    _close(console, experiments, plan, outcomes, schedule)
    if len(outcomes) < len(plan) or any(o.status == "KILLED" for o in outcomes):
        console.print(f"interrupted: {len(outcomes)} of {len(plan)} run(s) done or stopped")
        return 130
    return 1 if any(o.status != "FINISHED" for o in outcomes) else 0


def executor_settings(experiments, args: argparse.Namespace):
    """The executor of this invocation: ``executor:`` in the files, then the command line."""
    from orchestrator.orchestration.executors.base import settings_for

    return settings_for(experiments, name=args.executor, address=args.address,
                        partition=args.partition, time_minutes=args.time_minutes)


def add_executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", metavar="NAME",
                   help="where the runs go: local (this machine, the default), ray, slurm "
                        "(default: executor: in the files)")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="ray: the cluster to join (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--partition", metavar="NAME", help="slurm: the partition of the jobs")
    p.add_argument("--time-minutes", type=int, metavar="N",
                   help="slurm: the time limit of each job")


def _close(console, experiments, plan, outcomes, schedule) -> None:
    """Describe the experiments in MLflow, then the closing table: with more than one backend
    the comparison (backends as columns, one row per variant and metric; logged as each
    experiment's ``comparison`` run, with the invocation's schedule as tags), else one row per
    run; then the schedule line (wall time against the ideal)."""
    from orchestrator.comparison.terminal import summary_table
    from orchestrator.tracking.store import describe_experiment, experiment_id, tracking_uri

    uri = tracking_uri()
    labels = {o.label for o in outcomes if o.run_id}
    started = {run.experiment.name for run in plan if run.label in labels}
    for exp in {e.name: e for e in experiments if e.name in started}.values():
        describe_experiment(uri, experiment_id(exp.name, uri),
                            str(exp.raw.get("description") or ""))
    finished = [o.run_id for o in outcomes if o.status == "FINISHED" and o.run_id]
    if len({run.backend for run in plan}) < 2 or not finished:
        console.print(summary_table(outcomes))
        if schedule is not None:
            console.print(schedule.line(), highlight=False)
        return
    from orchestrator.comparison.analysis import compare
    from orchestrator.comparison.comparison_run import log_comparison
    from orchestrator.comparison.readback import select_outcomes
    from orchestrator.comparison.report import build_section
    from orchestrator.comparison.terminal import print_comparison

    comparison = compare(select_outcomes(finished, uri))
    print_comparison(console, comparison, only_metrics=True)
    tags = {f"orchestrator.{k.replace('/', '.')}": f"{v:g}"
            for k, v in (schedule.metrics().items() if schedule is not None else ())}
    for exp in comparison.experiments:
        log_comparison(build_section(exp, comparison), comparison, uri, extra_tags=tags)
    if schedule is not None:
        console.print(schedule.line(), highlight=False)
    console.print("more: orchestrator compare FILE... (agreement, speed, --html report)",
                  highlight=False)


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
    add_executor_args(p)
    p.set_defaults(func=_cmd_run)
