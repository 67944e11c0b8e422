"""``parity``: an experiment trained on every backend from the same weights and batches; the
per-epoch loss differences, logged to MLflow; exit status 1 when the backends disagree."""

from __future__ import annotations

import argparse

from orchestrator.cli.common import bad_input, input_errors, make_console

EXIT_DISAGREE = 1


def _check_counts(args: argparse.Namespace) -> str | None:
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            return f"{option} must be a whole number >= 1, got {value}"
    if not args.rtol > 0:
        return f"--rtol must be a number > 0, got {args.rtol:g}"
    return None


def _cmd_parity(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from orchestrator.comparison import parity
    from orchestrator.comparison.tables import TextTable, to_rich
    from orchestrator.orchestration.parent import check_data
    from orchestrator.plugins.registry import RegistryError
    from orchestrator.tracking.store import ensure_store

    problem = _check_counts(args)
    if problem:
        return bad_input(ValueError(problem))
    try:
        experiments, extra = parity.load(args.file, args.override or [], epochs=args.epochs,
                                         dtype=args.dtype, batch_size=args.batch_size,
                                         backends=args.backends)
        if len(experiments[0].backends) < 2:
            return bad_input(ValueError(f"{args.file}: parity needs two backends or more, "
                                        f"got {', '.join(experiments[0].backends)}"))
        check_data(experiments)
    except (*input_errors(), RegistryError) as error:
        return bad_input(error)
    console = make_console()
    first = experiments[0]
    console.print(f"parity of {first.name} ({args.file}): {len(experiments)} variant(s) on "
                  f"{', '.join(first.backends)}, seed {first.seeds[0]}, "
                  f"{first.train.epochs} epoch(s), {args.dtype}; same initial weights and "
                  f"batches, one process per backend ({' '.join(extra)})", highlight=False)
    result = parity.run(experiments, extra, ensure_store(), args.rtol)
    table = result.table
    rows = [[parity.cell(c, row[c]) for c in table.columns] for _, row in table.iterrows()]
    console.print(to_rich(TextTable("train/loss per epoch and relative difference to "
                                    f"{result.backends[0]}", list(table.columns), rows)))
    for backend, versions in result.versions.items():
        console.print(f"{backend}: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
                      highlight=False)
    for _, row in result.agreement.iterrows():
        over = row["first_epoch_over_rtol"]
        where = "" if over is None or over != over else \
            f", over rtol {args.rtol:g} from epoch {int(over)}"
        console.print(escape(f"[{row['variant']}] {row['backend']} vs {row['reference']}: "
                             f"largest relative difference {row['max_difference']:.2e}{where}"),
                      highlight=False)
    verdict = "agree" if result.agree else "DISAGREE"
    console.print(f"{verdict} within rtol {args.rtol:g} (parity run {result.parent_run_id})",
                  highlight=False)
    return 0 if result.agree else EXIT_DISAGREE


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="train an experiment on every backend from the same "
                                      "weights and batches; exit 1 if they disagree",
                       description="Train every variant of an experiment file on each chosen "
                                   "backend (one process per backend) from the same initial "
                                   "weights and batches (first seed, one split, no early "
                                   "stopping, dropout off), print train/loss per epoch with the "
                                   "relative difference to the first backend, log it to "
                                   "MLflow (a 'parity' run), and exit with status 1 when a "
                                   "difference exceeds --rtol (0 when all agree).")
    p.add_argument("file", metavar="FILE", help="an experiment YAML file")
    p.add_argument("--backends", nargs="+", metavar="NAME",
                   help="default: the file's backends")
    p.add_argument("--epochs", type=int, default=None, help="default: the file's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the file's")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                   help="float64 (default) shows the math agreeing; in float32 Adam turns "
                        "rounding noise in zero-gradient weights (a bias just before batch "
                        "norm) into visible differences")
    p.add_argument("--rtol", type=float, default=1e-3,
                   help="largest relative train/loss difference allowed (default 1e-3)")
    p.add_argument("-o", "--override", action="append", metavar="KEY=VALUE",
                   help="override a config value by dotted key (repeatable)")
    p.set_defaults(func=_cmd_parity)
