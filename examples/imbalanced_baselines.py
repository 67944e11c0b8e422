"""Non-neural baselines on the exact test parts of the hypothyroid experiments.

DATA.md's reference figures (logistic regression AP 0.860, gradient boosting 0.911) are 5-fold
means over folds of their own. This script scores the same two models on the folds our runs use:
the 5 stratified folds (seed 0) of experiments/cv/imbalanced_cv.yaml, which are the outer folds
of experiments/tune/imbalanced_tune.yaml's nested cross-validation, and the single 20 % test part
of experiments/imbalanced.yaml. Each model trains on the training and validation rows together
(they need no validation part); the stronger tree ensembles are untuned (one setting each, the first
and only one tried)::

    .venv/bin/python examples/imbalanced_baselines.py
"""

from __future__ import annotations

import numpy as np


def _models() -> dict:
    """DATA.md's two references with their defaults, then three stronger tree ensembles, which
    show how much room these folds leave above gradient boosting's defaults."""
    from sklearn.ensemble import (ExtraTreesClassifier, HistGradientBoostingClassifier,
                                  RandomForestClassifier)
    from sklearn.linear_model import LogisticRegression

    return {"logistic regression": lambda: LogisticRegression(max_iter=2000),
            "histogram gradient boosting": lambda: HistGradientBoostingClassifier(random_state=0),
            "gradient boosting, lr 0.05, 15 leaves, 300 iterations":
                lambda: HistGradientBoostingClassifier(learning_rate=0.05, max_leaf_nodes=15,
                                                       max_iter=300, random_state=0),
            "random forest, 500 trees":
                lambda: RandomForestClassifier(500, n_jobs=1, random_state=0),
            "extra trees, 500 trees": lambda: ExtraTreesClassifier(500, n_jobs=1, random_state=0)}


def _score(make, split) -> float:
    from sklearn.metrics import average_precision_score

    parts = [(split.x_train, split.y_train)]
    if split.x_val is not None:
        parts.append((split.x_val, split.y_val))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    model = make().fit(x, y)
    return float(average_precision_score(split.y_test, model.predict_proba(split.x_test)[:, 1]))


def main() -> int:
    from orchestrator.config.loader import load
    from orchestrator.evaluation.statistics import summarize
    from orchestrator.plugins import manager as plugin_manager

    exp = load(["experiments/tune/imbalanced_tune.yaml"])[0]
    task = plugin_manager.tasks().get(exp.task)()
    single = task.prepare(exp.data, seed=exp.seeds[0], folds=None).splits[0]
    folds = task.prepare(exp.data, seed=exp.seeds[0], folds=5).splits
    print(f"test part: {len(single.y_test)} rows, {int(single.y_test.sum())} positive")
    print("| model | AP, experiments/imbalanced.yaml's test part | AP, the 5 outer folds (mean "
          "[95 % t-interval]) |")
    print("|---|---|---|")
    for name, make in _models().items():
        cv = summarize([_score(make, split) for split in folds])
        print(f"| {name} | {_score(make, single):.4f} | {cv.mean:.4f} [{cv.low:.4f}, "
              f"{cv.high:.4f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
