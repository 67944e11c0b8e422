"""Activity recognition recordings: the smartwatch set, user tables, windows, subject splits."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from orchestrator.data.errors import DataError, listing, prefix
from orchestrator.data.files import numeric_columns, read_frame, require_columns
from orchestrator.data.packaged import packaged_file

WATCH_FILE = "data/watch_dataset.npy"
WATCH_CLASSES = ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW")
WATCH_CHANNELS = ("ax", "ay", "az", "wx", "wy", "wz")


class SkippedRecordingsWarning(UserWarning):
    """Some recordings were shorter than the window and produced no window."""


@dataclass(frozen=True, eq=False)
class Recordings:
    """Whole recordings, one label and one subject each; windows are cut later, per recording.

    ``signals[i]`` is float32 ``[n_i, C]``; ``labels[i]`` indexes ``class_names``; ``subjects[i]``
    is who was recorded (the unit of an honest split); ``source`` is the file it came from.
    """

    signals: tuple[np.ndarray, ...]
    labels: np.ndarray
    subjects: np.ndarray
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    rate_hz: float
    source: str

    def __post_init__(self) -> None:
        r = len(self.signals)
        if len(self.labels) != r or len(self.subjects) != r:
            raise DataError(f"data: {self.source}: {r} recordings but {len(self.labels)} labels "
                            f"and {len(self.subjects)} subjects")
        for i, s in enumerate(self.signals):
            if s.ndim != 2 or s.shape[1] != len(self.channel_names):
                raise DataError(f"data: {self.source}: recording {i} has shape {s.shape}, "
                                f"expected [n, {len(self.channel_names)}]")

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.signals], dtype=np.int64)


def load_watch() -> Recordings:
    """Burns et al. 2018 smartwatch shoulder exercises (seglearn 1.2.5): 140 recordings at 50 Hz.

    7 classes (PEN ABD FEL IR ER TRAP ROW), 10 subjects, channels ax ay az wx wy wz. The file is a
    pickle, so it is loaded only from the installed seglearn package, never from a user path
    (unpickling runs code; user recordings come in through ``load_recordings_table``).
    """
    path = packaged_file("seglearn", WATCH_FILE)
    d = np.load(path, allow_pickle=True).item()
    names = tuple(str(n) for n in d["y_labels"])
    channels = tuple(str(c) for c in d["X_labels"])
    if channels != WATCH_CHANNELS or set(names) != set(WATCH_CLASSES):
        raise DataError(f"data: {path}: unexpected classes {names} or channels {channels}; "
                        "reinstall seglearn==1.2.5")
    # y holds indices into y_labels; remap so class ids follow WATCH_CLASSES whatever the order.
    remap = np.array([WATCH_CLASSES.index(n) for n in names], dtype=np.int64)
    return Recordings(signals=tuple(np.asarray(x, dtype=np.float32) for x in d["X"]),
                      labels=remap[np.asarray(d["y"], dtype=np.int64)],
                      subjects=np.asarray(d["subject"], dtype=np.int64),
                      class_names=WATCH_CLASSES, channel_names=channels, rate_hz=50.0,
                      source=str(path))


def load_recordings_table(path: str | Path, *, channels: list[str] | None, label: str,
                          recording: str, subject: str | None, rate_hz: float) -> Recordings:
    """Recordings from a CSV/Parquet file with one row per time step, rows in time order.

    ``channels=None`` takes every column except label/recording/subject (so pass ``channels``
    when the file has a timestamp column). Each recording must carry one label (and one subject);
    without a subject column each recording is its own subject. Class names are the sorted
    distinct label values, as strings.
    """
    import pandas as pd

    df = read_frame(path)
    ids = {"label": label, "recording": recording} | ({"subject": subject} if subject else {})
    require_columns(df, ids, path)
    explicit = channels is not None
    if channels is None:
        channels = [c for c in df.columns if c not in ids.values()]
    require_columns(df, {"channel": c for c in channels}, path)
    if not channels:
        raise DataError(f"{prefix(path)}: no channel columns besides {listing(ids.values())}")
    if rate_hz <= 0:
        raise DataError(f"data.rate_hz: {rate_hz} must be positive")
    try:
        values = numeric_columns(df, channels, path, role="channel")
    except DataError as exc:
        if not explicit:  # the column was taken by default: say how to leave it out
            raise DataError(f"{exc}; or list the channels (data.channels)") from None
        raise
    if values.isna().any().any():
        col = values.columns[values.isna().any()][0]
        raise DataError(f"{prefix(path)}: channel column '{col}' has "
                        f"{int(values[col].isna().sum())} missing values; fill or drop them")
    for role, col in ids.items():
        if df[col].isna().any():
            raise DataError(f"{prefix(path)}: {role} column '{col}' has missing values")
    codes, rec_ids = pd.factorize(df[recording], sort=False)  # recordings in order of appearance
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    rows = np.split(order, bounds)
    firsts = np.array([r[0] for r in rows])

    def per_recording(role: str, col: str) -> np.ndarray:
        counts = df.groupby(codes, sort=True)[col].nunique().to_numpy()
        if (counts > 1).any():
            bad = int(np.argmax(counts > 1))
            found = listing(pd.unique(df.loc[codes == bad, col]))
            raise DataError(f"{prefix(path)}: recording '{rec_ids[bad]}' has {counts[bad]} {role}s "
                            f"({found}); one {role} per recording: split it into recordings")
        return df[col].to_numpy()[firsts]

    raw_labels = per_recording("label", label)
    try:  # numeric labels sort as numbers (2 before 10), text as text
        class_names, labels = np.unique(raw_labels, return_inverse=True)
    except TypeError:  # mixed types in one column
        class_names, labels = np.unique(raw_labels.astype(str), return_inverse=True)
    subjects = per_recording("subject", subject) if subject else np.asarray(rec_ids)
    if subjects.dtype == object:
        subjects = subjects.astype(str)
    x = values.to_numpy(dtype=np.float32)
    return Recordings(signals=tuple(x[r] for r in rows), labels=labels.astype(np.int64),
                      subjects=subjects, class_names=tuple(str(c) for c in class_names),
                      channel_names=tuple(channels), rate_hz=float(rate_hz), source=str(path))


class Windows(NamedTuple):
    """Fixed-length windows; unpacks as ``x, y, groups, recording_index``."""

    x: np.ndarray  # [N, window, C] float32
    y: np.ndarray  # [N] class ids
    groups: np.ndarray  # [N] subject of each window (the split unit)
    recording_index: np.ndarray  # [N] index into Recordings.signals


def windows(rec: Recordings, window: int, stride: int) -> Windows:
    """Sliding windows cut inside each recording (never across two), vectorised per recording.

    A recording shorter than ``window`` gives no window; the skipped count is reported with a
    ``SkippedRecordingsWarning`` (and equals recordings absent from ``recording_index``).
    """
    from numpy.lib.stride_tricks import sliding_window_view

    if window < 1 or stride < 1:
        raise DataError(f"data.window/stride: {window}/{stride}: both must be >= 1 samples")
    longest = int(rec.lengths.max()) if rec.signals else 0
    if window > longest:
        raise DataError(f"data.window: window {window} is longer than the longest recording "
                        f"({longest} samples) in {rec.source}")
    xs, index = [], []
    for i, sig in enumerate(rec.signals):
        if len(sig) < window:
            continue
        view = sliding_window_view(sig, window, axis=0)[::stride]  # [m, C, window], no copy
        xs.append(view.transpose(0, 2, 1))
        index.append(np.full(len(view), i, dtype=np.int64))
    skipped = len(rec.signals) - len(xs)
    if skipped:
        warnings.warn(f"{rec.source}: {skipped} of {len(rec.signals)} recordings are shorter "
                      f"than the window ({window} samples) and were skipped",
                      SkippedRecordingsWarning, stacklevel=2)
    rec_index = np.concatenate(index)
    x = np.concatenate(xs).astype(np.float32, copy=False)  # the one copy
    return Windows(x, rec.labels[rec_index], rec.subjects[rec_index], rec_index)


def subject_split(groups: np.ndarray, test_subjects: int | list, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx) with whole subjects held out: a count drawn with ``seed``, or names.

    Splitting windows at random leaks (overlapping windows of one recording on both sides).
    """
    groups = np.asarray(groups)
    subjects = np.unique(groups)
    if isinstance(test_subjects, (int, np.integer)):
        if not 1 <= test_subjects < len(subjects):
            raise DataError(f"data.test_subjects: {test_subjects}: must be between 1 and "
                            f"{len(subjects) - 1} ({len(subjects)} subjects)")
        held = np.random.default_rng(seed).choice(subjects, size=int(test_subjects), replace=False)
    else:
        known = {str(s): s for s in subjects.tolist()}  # '3' and 3 name the same subject
        unknown = [s for s in test_subjects if str(s) not in known]
        held = np.asarray([known[str(s)] for s in test_subjects if str(s) in known])
        if unknown or len(set(held.tolist())) >= len(subjects) or not len(held):
            raise DataError(f"data.test_subjects: {list(test_subjects)}: need 1 to "
                            f"{len(subjects) - 1} known subjects; unknown: {unknown}; "
                            f"subjects: {listing(subjects)}")
    test = np.isin(groups, held)
    return np.flatnonzero(~test), np.flatnonzero(test)


def group_folds(groups: np.ndarray, k: int, *, key: str = "cv.folds", where: str = ""
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, test_idx) folds with each subject in exactly one test fold (GroupKFold).
    ``key`` and ``where`` name the setting and the rows in the error for too many folds."""
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n = len(np.unique(groups))
    if not 2 <= k <= n:
        raise DataError(f"{key}: {k}: need 2 <= k <= {n} (the number of subjects{where})")
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups))


@dataclass(frozen=True, eq=False)
class ChannelScaler:
    """Per-channel mean/std over all time steps of the *training* windows; ``transform`` any."""

    mean: np.ndarray  # [C]
    std: np.ndarray  # [C]

    @classmethod
    def fit(cls, x_train: np.ndarray) -> ChannelScaler:
        x = np.asarray(x_train, dtype=np.float64)
        std = x.std(axis=(0, 1))
        return cls(x.mean(axis=(0, 1)), np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x) - self.mean) / self.std).astype(np.float32)
