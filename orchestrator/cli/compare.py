"""``compare``: per experiment, do the backends agree, which is better, which is faster; read
back from the MLflow store, printed, written as an HTML report and logged as a ``comparison``
run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orchestrator.cli.common import bad_input, input_errors, make_console


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _cmd_compare(args: argparse.Namespace) -> int:
    from orchestrator.comparison.analysis import compare
    from orchestrator.comparison.readback import select
    from orchestrator.comparison.readonly import CompareError
    from orchestrator.tracking.store import tracking_uri

    if args.html is not None and Path(args.html).exists() and not Path(args.html).is_dir():
        return bad_input(ValueError(f"--html {args.html}: exists and is not a folder"))
    try:
        selection = select(args.targets, args.runs or [], args.override or [], tracking_uri())
    except (CompareError, *input_errors()) as error:
        return bad_input(error)
    comparison = compare(selection, args.rtol)
    if args.format == "json":
        print(json.dumps(_json(comparison), indent=1))
    elif args.format == "markdown":
        from orchestrator.comparison.terminal import markdown

        print(markdown(comparison))
    else:
        from orchestrator.comparison.terminal import print_comparison

        print_comparison(make_console(), comparison)
    _write(comparison, args)
    return 0


def _json(comparison):
    from orchestrator.comparison.tables import to_json

    return to_json(comparison)


def _write(comparison, args: argparse.Namespace) -> None:
    """The HTML report (``--html``) and one ``comparison`` run per experiment (unless
    ``--no-log``); where they went goes to stderr, so stdout stays the tables."""
    if args.html is None and args.no_log:
        return
    from orchestrator.comparison.comparison_run import log_comparison
    from orchestrator.comparison.report import build_section, write_html
    from orchestrator.tracking.store import runs_url

    sections = [build_section(exp, comparison) for exp in comparison.experiments]
    if args.html is not None:
        path = write_html(sections, comparison, Path(args.html))
        print(f"report: {path}", file=sys.stderr)
    if not args.no_log:
        for section in sections:
            run_id = log_comparison(section, comparison, comparison.selection.uri)
            exp = section.comparison.info
            print(f"comparison run {run_id} in experiment {exp.name!r} (orchestrator ui: "
                  f"{runs_url('http://127.0.0.1:5000', exp.experiment_id)})", file=sys.stderr)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare backends (and variants) from the runs in the MLflow store",
        description="Read runs back from the MLflow store and compare the backends per "
                    "experiment and variant: every final metric's mean, std and 95 %% "
                    "interval over seeds (and folds), the paired difference between backends "
                    "over matched seeds with a paired t-test, per-epoch agreement of the "
                    "training loss, speed (runs that shared the cores flagged), peak memory, "
                    "tuning studies. FILE: the latest finished run of each planned run; "
                    "EXPERIMENT_NAME: the latest finished run of each variant, backend and "
                    "seed; --runs: exactly these runs. See docs/comparison.md.")
    p.add_argument("targets", nargs="*", metavar="FILE|EXPERIMENT_NAME",
                   help="experiment YAML files or MLflow experiment names")
    p.add_argument("--runs", nargs="+", metavar="ID", help="compare these runs (one "
                   "experiment's) instead")
    p.add_argument("-o", "--override", action="append", metavar="KEY=VALUE",
                   help="the overrides the runs were made with (selects their config)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    p.add_argument("--html", metavar="DIR", help="write the report as one self-contained "
                   "HTML file in DIR")
    p.add_argument("--rtol", type=positive_float, default=1e-3, metavar="R",
                   help="relative tolerance of the per-epoch loss agreement (default 1e-3)")
    p.add_argument("--no-log", action="store_true", help="do not log a comparison run")
    p.set_defaults(func=_cmd_compare)
