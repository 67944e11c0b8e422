"""What the terminal shows: one line per finished run, the per-run table of a one-backend
invocation, and the comparison tables (rich or markdown)."""

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


def print_comparison(console, comparison, *, only_metrics: bool = False) -> None:
    """Every experiment's tables (or only the main one) and notes, on a rich console."""
    from orchestrator.comparison.tables import experiment_tables, metrics_table, to_rich

    for exp in comparison.experiments:
        chosen = ([metrics_table(exp)] if not exp.summaries.empty else []) if only_metrics \
            else experiment_tables(exp, comparison.rtol)
        for table in chosen:
            console.print(to_rich(table))
        for note in exp.notes:
            console.print(f"note: {escape(note)}", highlight=False)


def markdown(comparison) -> str:
    from orchestrator.comparison.tables import experiment_tables, to_markdown

    parts = []
    for exp in comparison.experiments:
        parts.append(f"## {exp.name}\n")
        parts += [to_markdown(t) for t in experiment_tables(exp, comparison.rtol)]
        parts += [f"- note: {n}" for n in exp.notes]
        parts.append("")
    return "\n".join(parts)
