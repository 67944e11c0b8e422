"""The vanishing-gradient study read back from MLflow: accuracy per cell and length with a
t-interval over seeds, and the gradient reaching each time step for both cells in one plot.

Run ``orchestrator run experiments/vanishing.yaml`` first (3 seeds x rnn/lstm x 4 lengths x 2
backends), then::

    .venv/bin/python examples/vanishing_report.py [--out vanishing_report] [--experiment NAME]

It writes ``accuracy.md`` (the table), ``accuracy.csv`` and ``gradient_norm_per_step.png`` (one
panel per length: mean over seeds of |d loss / d x_t| for the rnn and the lstm, per backend) to
``--out``, and prints the table. The latest finished run of each cell, length, backend and seed
counts.
"""

from __future__ import annotations

import argparse
import io
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _runs(experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.store import tracking_uri

    client = MlflowClient(tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"no MLflow experiment {experiment!r}: run "
                         "`orchestrator run experiments/vanishing.yaml` first")
    runs = client.search_runs([found.experiment_id], "tags.`orchestrator.kind` = 'run' and "
                              "attributes.status = 'FINISHED'", max_results=5000,
                              order_by=["attributes.start_time ASC"])
    latest = {}
    for run in runs:  # later runs of the same cell replace earlier ones
        p = run.data.params
        key = (p["model.cell"], int(p["data.length"]), p["backend"], int(p["seed"]))
        latest[key] = run
    return [(key, run) for key, run in sorted(latest.items())]


def _gradient(run) -> np.ndarray | None:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.store import tracking_uri

    client = MlflowClient(tracking_uri())
    try:
        path = client.download_artifacts(run.info.run_id, "tables/gradient_norm_per_step.csv")
    except Exception:  # an older run without the table
        return None
    return pd.read_csv(path)["grad_norm"].to_numpy()


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from orchestrator.evaluation.plots import _pyplot
    from orchestrator.evaluation.statistics import summarize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="vanishing-gradient")
    parser.add_argument("--out", default="vanishing_report")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    accuracy: dict[tuple, dict[int, float]] = defaultdict(dict)
    gradients: dict[tuple, list[np.ndarray]] = defaultdict(list)
    for (cell, length, backend, seed), run in _runs(args.experiment):
        accuracy[(backend, cell, length)][seed] = run.data.metrics["test/accuracy"]
        grad = _gradient(run)
        if grad is not None:
            gradients[(backend, cell, length)].append(grad)
    rows = []
    for (backend, cell, length), values in sorted(accuracy.items()):
        s = summarize([values[k] for k in sorted(values)])
        rows.append({"backend": backend, "cell": cell, "length": length, "seeds": s.n,
                     "mean": s.mean, "ci_low": s.low, "ci_high": s.high,
                     "values": " ".join(f"{values[k]:.3f}" for k in sorted(values))})
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "accuracy.csv", index=False)
    lines = ["| backend | cell | length | seeds | test accuracy | 95 % t-interval | per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        interval = (f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r["seeds"] > 1 else "-")
        lines.append(f"| {r['backend']} | {r['cell']} | {r['length']} | {r['seeds']} | "
                     f"{r['mean']:.3f} | {interval} | {r['values']} |")
    table = "\n".join(lines)
    (out / "accuracy.md").write_text(table + "\n")
    print(table)
    plt = _pyplot()
    lengths = sorted({k[2] for k in gradients})
    if lengths:
        fig, axes = plt.subplots(1, len(lengths), figsize=(max(6.5, 4.2 * len(lengths)), 4.2),
                                 squeeze=False)
        styles = {"torch": "-", "tensorflow": "--"}
        colours = {"rnn": "tab:red", "lstm": "tab:blue"}
        for ax, length in zip(axes[0], lengths):
            for (backend, cell, n), curves in sorted(gradients.items()):
                if n != length:
                    continue
                mean = np.exp(np.mean(np.log(np.maximum(np.stack(curves), 1e-30)), axis=0))
                ax.plot(np.arange(1, len(mean) + 1), mean, styles.get(backend, ":"),
                        color=colours.get(cell), label=f"{cell} {backend}")
            ax.set_yscale("log")
            ax.set_title(f"length {length}")
            ax.set_xlabel("time step t")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("|d loss / d x_t|\n(geometric mean over seeds)")
        axes[0][-1].legend(fontsize=8)
        fig.suptitle("Gradient of the test loss reaching each input step, after training",
                     fontsize=11)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        (out / "gradient_norm_per_step.png").write_bytes(buffer.getvalue())
    print(f"\nwritten: {out / 'accuracy.md'}, {out / 'accuracy.csv'}, "
          f"{out / 'gradient_norm_per_step.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
