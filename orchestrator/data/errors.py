"""DataError, the one exception of the data layer, and helpers that make its messages useful."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class DataError(ValueError):
    """Bad or missing data: a one-line message naming the file (and column/key) and the fix.

    Example: ``data.path: /x/y.csv: label column 'target' not found; columns: a, b, c
    (did you mean 'Target'?)``.
    """


def prefix(path: str | Path | None, key: str = "data.path") -> str:
    """The ``key: path`` prefix every message starts with, so a user can find the file."""
    return f"{key}: {path}" if path is not None else key


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest option, or an empty string.

    Case differences are the commonest typo in column names, so an exact case-insensitive match
    wins; then difflib's fuzzy ratio; then a shared prefix (abbreviations).
    """
    options = [str(o) for o in options]
    lowered = {o.lower(): o for o in options}
    if name.lower() in lowered:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if not close:  # abbreviations ('rec' for 'recording') score low in difflib's ratio
        close = [o for o in lowered if len(o) >= 3 and (o.startswith(name.lower())
                                                         or name.lower().startswith(o))][:1]
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def listing(options: Iterable[object], limit: int = 20) -> str:
    """``a, b, c`` — truncated with a count, because motion-capture tables have 100+ columns."""
    items = [str(o) for o in options]
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


def missing_column(path: str | Path | None, role: str, name: str, columns: Iterable[str],
                   key: str = "data.path") -> DataError:
    """The error for a named column that the file does not have."""
    columns = [str(c) for c in columns]
    return DataError(f"{prefix(path, key)}: {role} column '{name}' not found; "
                     f"columns: {listing(columns)}{did_you_mean(name, columns)}")
