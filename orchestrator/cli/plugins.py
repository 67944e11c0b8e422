"""``plugins``: the installed backends, their components and tasks; imports no framework.

Its actions ``plugins doctor`` and ``plugins check NAME`` are in ``plugin_checks``.
"""

from __future__ import annotations

import argparse
import json

from orchestrator.canonical import catalogue
from orchestrator.cli import plugin_checks


def _cmd_plugins(args: argparse.Namespace) -> int:
    from orchestrator.plugins import manager as plugin_manager

    state = plugin_manager.state()
    backends = state.backends.infos()
    if args.json:
        print(json.dumps({
            "backends": [{
                "name": b.name, "plugin": b.plugin, "loader": b.loader, "summary": b.summary,
                "versions": b.versions(), "unavailable": b.unavailable(),
                "components": {k: list(v) for k, v in b.components.items()},
                "missing": {k: list(v) for k, v in b.missing().items()},
            } for b in backends],
            "tasks": [{"name": name, "plugin": state.tasks.plugin(name),
                       "summary": state.tasks.get(name).summary}
                      for name in state.tasks.names()],
            "executors": [{"name": e.name, "plugin": e.plugin, "loader": e.loader,
                           "summary": e.summary, "versions": e.versions()}
                          for e in state.executors.infos()],
            "failures": [{"name": f.name, "target": f.target, "stage": f.stage,
                          "kind": f.kind, "error": f.error} for f in state.failures],
            "components": {k: list(v) for k, v in catalogue.all_names().items()},
        }, indent=2))
        return 0

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title="Backends", title_justify="left")
    for column in ("backend", "plugin", "framework versions", "summary"):
        table.add_column(column)
    for b in backends:
        versions = ", ".join(f"{d} {v or '(not installed)'}" for d, v in b.versions().items())
        summary = f"[yellow]unavailable[/]: {b.summary}" if b.unavailable() else b.summary
        table.add_row(b.name, b.plugin, versions, summary)
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


    executors = Table(title="Executors", title_justify="left")
    for column in ("executor", "plugin", "needs", "summary"):
        executors.add_column(column)
    for e in state.executors.infos():
        needs = ", ".join(f"{d} {v or '(not installed)'}" for d, v in e.versions().items())
        executors.add_row(e.name, e.plugin, needs or "-", escape(e.summary))
    console.print(executors)

    for f in state.failures:
        where = f" ({f.target})" if f.target else ""
        console.print(f"[red]plugin {escape(repr(f.name))}{escape(where)} failed at "
                      f"{f.stage}:[/] {escape(f.error)}",
                      highlight=False)
        if args.verbose:
            console.print(f.details, highlight=False, markup=False)
    if not backends:
        console.print("[yellow]no backend is installed[/]")
    if state.failures:
        console.print("`orchestrator plugins doctor` tells more.")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list backends, their framework versions and components "
                                       "(doctor, check NAME: diagnose plugins)",
                       description="List the installed backend plugins, the framework versions "
                                   "they run on, and which canonical components each provides. "
                                   "Imports no framework. `plugins doctor` reports broken "
                                   "plugins, `plugins check NAME` runs the conformance kit.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show full tracebacks of plugins that failed to load")
    p.set_defaults(func=_cmd_plugins)
    plugin_checks.add_actions(p)
