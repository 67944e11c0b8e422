"""``cache``: what the derived-data cache holds, and emptying it.

The cache (windows, encoded corpora, cleaned tables, HAR's prepared splits) is bounded by
``$ORCHESTRATOR_CACHE_MAX_MB`` and can be deleted at any time: a run rebuilds what it needs.
"""

from __future__ import annotations

import argparse
import time


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def _cmd_cache(args: argparse.Namespace) -> int:
    from rich.table import Table

    from orchestrator.cli.common import make_console
    from orchestrator.data.cache import (DEFAULT_MAX_MB, MAX_MB_VARIABLE, cache_dir, entries,
                                         max_bytes)

    found = entries()
    bound = max_bytes()
    limit = "no bound" if bound is None else f"bound {_size(bound)}"
    print(f"cache {cache_dir()}: {len(found)} file(s), {_size(sum(e.size for e in found))}; "
          f"{limit} (${MAX_MB_VARIABLE}, default {DEFAULT_MAX_MB})")
    if not found:
        return 0
    table = Table()
    for column, justify in (("name", "left"), ("files", "right"), ("size", "right"),
                            ("last used", "left")):
        table.add_column(column, justify=justify)
    for name in sorted({e.name for e in found}):
        mine = [e for e in found if e.name == name]
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(max(e.used for e in mine)))
        table.add_row(name, str(len(mine)), _size(sum(e.size for e in mine)), used)
    make_console().print(table)
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    from orchestrator.cli.common import bad_input
    from orchestrator.data.cache import cache_dir, clear, entries

    if args.names:
        known = sorted({e.name for e in entries()})
        unknown = [n for n in args.names if n not in known]
        if unknown:
            return bad_input(f"no cache named {', '.join(repr(n) for n in unknown)} in "
                             f"{cache_dir()}; names: {', '.join(known) or 'none (it is empty)'}")
    removed = clear(args.names)
    print(f"removed {len(removed)} file(s), {_size(sum(e.size for e in removed))}, "
          f"from {cache_dir()}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list or clear the derived-data cache",
                       description="List the derived-data cache (windows, encoded corpora, "
                                   "prepared splits) by name, size and last use, or clear it. "
                                   "It holds at most $ORCHESTRATOR_CACHE_MAX_MB megabytes "
                                   "(default 4096, 0: no bound), least recently used first out.")
    p.set_defaults(func=_cmd_cache)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    c = actions.add_parser("clear", help="remove cached files (a run rebuilds what it needs)",
                           description="Remove every cached file, or those of the given names.")
    c.add_argument("names", nargs="*", metavar="NAME", help="cache names (default: all)")
    c.set_defaults(func=_cmd_clear)
