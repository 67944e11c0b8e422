"""``plugins doctor`` and ``plugins check NAME``: what is wrong with the installed plugins, and
the conformance kit run against one installed backend, as tables."""

from __future__ import annotations

import argparse
import json

from orchestrator.cli.common import bad_input, make_console

EXIT_PROBLEMS = 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from orchestrator.plugins import doctor
    from orchestrator.plugins import manager as plugin_manager

    state = plugin_manager.state()
    findings = doctor.examine(state, load=args.load)
    problems = [f for f in findings if f.severity == "problem"]
    if args.json:
        print(json.dumps({
            "plugins": [{"name": p.name, "target": p.target, "version": p.version,
                         "builtin": p.builtin, "api_version": p.api_version}
                        for p in state.loaded],
            "findings": [{"severity": f.severity, "problem": f.problem, "plugin": f.plugin,
                          "message": f.message} for f in findings],
        }, indent=2))
        return EXIT_PROBLEMS if problems else 0

    from rich.markup import escape
    from rich.table import Table

    console = make_console()
    loaded = ", ".join(f"{p.name} ({'built-in' if p.builtin else p.version or '?'}, API "
                       f"{p.api_version or '?'})" for p in state.loaded)
    console.print(f"plugins: {escape(loaded) or 'none'}", highlight=False)
    console.print(f"backends: {', '.join(state.backends.names()) or 'none'}; tasks: "
                  f"{', '.join(state.tasks.names()) or 'none'}", highlight=False)
    if findings:
        table = Table(title="Findings", title_justify="left")
        for column in ("severity", "problem", "plugin", "detail"):
            table.add_column(column)
        for f in findings:
            style = "red" if f.severity == "problem" else "yellow"
            table.add_row(f"[{style}]{f.severity}[/]", f.problem, f.plugin, escape(f.message))
        console.print(table)
        if args.verbose:
            for f in findings:
                if f.details:
                    console.print(f"[bold]{f.plugin}[/]: {f.problem}", highlight=False)
                    console.print(f.details, highlight=False, markup=False)
    warnings = len(findings) - len(problems)
    if problems:
        console.print(f"[red]{len(problems)} problem(s)[/], {warnings} warning(s)")
        return EXIT_PROBLEMS
    console.print(f"[green]no problems[/], {warnings} warning(s)")
    return 0


def _error_cell(summary, dtype: str) -> str:
    m = summary.worst.get(dtype)
    return "" if m is None else f"{m.error:.1e} / {m.tol:.0e}"


def cmd_check(args: argparse.Namespace) -> int:
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.plugins.registry import RegistryError

    try:
        plugin_manager.backends().check_available(args.name)
    except RegistryError as error:
        return bad_input(error)

    from rich.markup import escape
    from rich.table import Table

    from orchestrator.testing.report import run_kit

    code, report = run_kit(args.name, select=args.select, verbose=args.verbose)
    if code == 5:
        return bad_input(ValueError(f"no conformance test matches -k {args.select!r}"))
    console = make_console()
    table = Table(title=f"Conformance of backend {args.name!r}: worst relative error against "
                        "the reference / its tolerance", title_justify="left")
    for column in ("kind", "component", "result", "passed", "failed", "skipped",
                   "float64 error", "float32 error"):
        table.add_column(column, justify="right" if column in ("passed", "failed", "skipped")
                         else "left")
    for s in report.summary():
        result = ("[red]FAIL[/]" if s.failed else "[green]pass[/]" if s.passed
                  else "[yellow]skipped[/]")
        table.add_row(s.kind, s.name, result, str(s.passed), str(s.failed), str(s.skipped),
                      _error_cell(s, "float64"), _error_cell(s, "float32"))
    console.print(table)
    failures = report.failures()
    for r in failures:
        console.print(f"[red]{r.outcome}[/] {escape(r.test)}: {escape(r.message)}",
                      highlight=False)
    counts = {o: sum(r.outcome == o for r in report.results)
              for o in ("passed", "failed", "error", "skipped")}
    console.print(f"{args.name}: " + ", ".join(f"{n} {o}" for o, n in counts.items() if n),
                  highlight=False)
    if code not in (0, 1):  # interrupted, internal or usage error: pytest said why
        return EXIT_PROBLEMS
    return EXIT_PROBLEMS if failures or code else 0


def add_actions(plugins_parser: argparse.ArgumentParser) -> None:
    actions = plugins_parser.add_subparsers(dest="action", metavar="ACTION")
    d = actions.add_parser(
        "doctor", help="report broken plugins; exit 1 on any problem",
        description="Report plugins that failed to load (and why), plugins written for "
                    "another plugin API version, names registered twice, hook implementations "
                    "that match no hook, and backends lacking canonical components; exit 1 if "
                    "there is any. Warn about backends whose framework is not installed.")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument("-v", "--verbose", action="store_true", help="show full tracebacks")
    d.add_argument("--import", dest="load", action="store_true",
                   help="also import every available backend's class (imports its framework)")
    d.set_defaults(func=cmd_doctor)
    c = actions.add_parser(
        "check", help="run the conformance kit against an installed backend",
        description="Run the conformance kit (orchestrator.testing.BackendConformance) against "
                    "an installed backend and print, per component, pass or fail and the "
                    "worst error measured against the NumPy reference; exit 1 if any check "
                    "fails.")
    c.add_argument("name", metavar="NAME", help="backend name (see `orchestrator plugins`)")
    c.add_argument("-k", dest="select", metavar="EXPRESSION",
                   help="only the checks matching this pytest -k expression, e.g. 'loss'")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="show pytest's tracebacks of failed checks")
    c.set_defaults(func=cmd_check)
