"""What the terminal shows about finished runs: one line each, and a table at the end."""

from __future__ import annotations

from rich.markup import escape

from orchestrator.orchestration.worker import RunOutcome

_STYLE = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}


def _value(outcome: RunOutcome) -> str:
    return "-" if outcome.value is None else f"{outcome.value:.4f}"


def outcome_line(outcome: RunOutcome) -> str:
    style = _STYLE.get(outcome.status, "white")
    text = (f"[{style}]{outcome.status:<8}[/] {escape(outcome.label)}  {outcome.metric or ''} "
            f"{_value(outcome)}  ({outcome.seconds:.1f} s)")
    if outcome.error:
        text += f"\n         [{style}]{escape(outcome.error)}[/]"
    return text


def summary_table(outcomes: list[RunOutcome]):
    from rich.table import Table

    table = Table(title="Summary", title_justify="left")
    for column in ("run", "status", "main metric", "value", "time (s)", "run id"):
        table.add_column(column)
    for o in outcomes:
        style = _STYLE.get(o.status, "white")
        table.add_row(escape(o.label), f"[{style}]{o.status}[/]", o.metric or "-", _value(o),
                      f"{o.seconds:.1f}", (o.run_id or "-")[:12])
    return table
