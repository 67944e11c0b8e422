"""Human activity recognition with the lecture's stacked Bi-LSTM network.

Data: the seglearn smartwatch shoulder-exercise recordings (``source: watch``, 10 subjects, 7
classes, 6 channels at 50 Hz) or the user's own Parquet/CSV recordings table (one row per time
step). Recordings are cut into windows that never cross two recordings, and the split is by
subject (unseen people): ``test_subjects`` are held out for the test metrics, ``val_subjects``
(taken from the remaining subjects) for ``val/loss``, ``val/accuracy`` and early stopping. Under
``cv: {folds: k}`` each subject is in exactly one test fold (grouped k-fold).

Everything that shapes the arrays happens here, in NumPy, so both backends see the same data:
optional block averaging (``downsample``), derived channels (``magnitudes``: the norm of every
x, y, z triple), per-window centering, channel standardization fitted on the training subjects
only, and augmentation of the training windows (random 3-D rotations applied to every triple,
amplitude scaling, jitter, extra copies) drawn from the run seed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from orchestrator.canonical import networks, specs
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.data.errors import DataError
from orchestrator.evaluation.metrics import (class_probabilities, multiclass,
                                              predict_in_batches, probability_scores,
                                              validation_accuracy)
from orchestrator.canonical.specs import Dense, Dropout, ModelSpec
from orchestrator.contract.task import Evaluation, Options, Prepared, Split, Task

Subjects = int | tuple[int | str, ...]


class Augment(Options):
    """Augmentation of the training windows (NumPy, drawn from the run seed)."""

    copies: int = Field(0, ge=0, le=20)  # augmented copies added next to the original windows
    rotation_deg: float = Field(0.0, ge=0, le=180)  # max angle of a random 3-D rotation
    scale: float = Field(0.0, ge=0, lt=1)  # amplitude factor drawn from U(1 - scale, 1 + scale)
    jitter: float = Field(0.0, ge=0)  # Gaussian noise std, in standardized units
    # per-channel signs of the mirror image (e.g. the watch on the other wrist), applied to a
    # random half of the augmented windows; () for none
    mirror: tuple[float, ...] = ()


class HarData(Options):
    source: str = "watch"  # "watch" (seglearn smartwatch set) or a Parquet/CSV recordings table
    # columns of a recordings table (ignored for "watch")
    channels: tuple[str, ...] | None = None  # null: every column but label/recording/subject
    label: str = "label"
    recording: str = "recording"
    subject: str | None = "subject"  # null: each recording is its own subject
    rate_hz: float = Field(50.0, gt=0)
    # windows, in samples at the recording rate
    window: int = Field(200, ge=1)
    stride: int = Field(100, ge=1)
    train_stride: int | None = Field(None, ge=1)  # training windows only (null: stride)
    downsample: int = Field(1, ge=1)  # average every k samples inside a window
    # subject split (a count drawn with the seed, or subject ids)
    test_subjects: Subjects = 2
    val_subjects: Subjects = 0  # 0: no validation set
    # preprocessing
    magnitudes: bool = False  # add |v| for every x, y, z channel triple
    center: Literal["none", "window"] = "none"  # subtract each window's per-channel mean
    standardize: bool = True  # ChannelScaler fitted on the training subjects
    augment: Augment = Augment()


class HarModel(Options):
    cell: Literal["lstm", "bilstm", "rnn"] = "bilstm"
    units: int = Field(32, ge=1)
    depth: int = Field(3, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    # extensions beyond the lecture's network (defaults reproduce it)
    input_dense: int = Field(0, ge=0)  # a per-time-step dense projection (+ activation) first
    # dense hidden layers (relu) between the recurrent stack and output
    head: tuple[PositiveInt, ...] = ()
    norm: Literal["none", "layer"] = "none"  # after the last recurrent layer
    logits: bool = False  # linear output (use a loss with from_logits: true) instead of softmax


class HarTask(Task):
    name = "har"
    summary = "activity recognition: windows of inertial recordings, split by subject"
    DataOptions = HarData
    ModelOptions = HarModel
    main_metric = "test/accuracy"
    losses = ("categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal")
    cv_split = "grouped"
    epoch_metric_names = ("val/accuracy",)
    final_metric_names = ("test/accuracy", "test/macro_f1", "val/accuracy", "val/macro_f1")

    def has_validation(self, data: HarData) -> bool:
        return bool(data.val_subjects)

    def spec_bounds(self, data: HarData) -> dict:
        # at least one channel and two classes; the window length is known
        return {"timesteps": max(data.window // data.downsample, 1),
                "channels": tuple(data.channels or ("?",)), "classes": 2}

    # --- checks -------------------------------------------------------------------------------

    def check(self, data: HarData, model: HarModel, loss: ComponentSpec) -> None:
        if bool(loss.params.get("from_logits", False)) != model.logits:
            raise ValueError("loss.from_logits: must be "
                             f"{'true' if model.logits else 'false'} (model.logits is "
                             f"{'true' if model.logits else 'false'}: the network outputs "
                             f"{'logits' if model.logits else 'softmax probabilities'})")
        if data.window % data.downsample:
            raise ValueError(f"data.downsample: {data.downsample} must divide data.window "
                             f"({data.window})")
        if data.source != "watch" and not Path(data.source).expanduser().exists():
            raise ValueError(f"data.source: {data.source}: file not found (use 'watch' or a "
                             "Parquet/CSV recordings table)")
        if data.augment.copies == 0 and (data.augment.rotation_deg or data.augment.scale
                                         or data.augment.jitter or data.augment.mirror):
            raise ValueError("data.augment.copies: augmentation is set but copies is 0")

    def components(self, model: HarModel) -> list[tuple[str, str]]:
        out = [("recurrent", model.cell)]
        if model.norm != "none":
            out.append(("norm", model.norm))
        return out

    # --- data ---------------------------------------------------------------------------------

    def prepare(self, data: HarData, *, seed: int, folds: int | None) -> Prepared:
        return self._prepare(data, seed, folds, None)

    def prepare_search(self, data: HarData, *, seed: int, folds: int,
                       outer: tuple[int, int] | None = None) -> Prepared:
        return self._prepare(data, seed, None, (folds, outer))

    def _prepare(self, data: HarData, seed: int, folds: int | None,
                 search: tuple[int, tuple[int, int] | None] | None) -> Prepared:
        """Subject splits: ``folds`` grouped folds (each the test part once) or the single
        split; with ``search = (k, outer)``, k grouped folds of the subjects outside the test
        part (of the single split, or of outer fold ``outer = (i, K)``), each the validation
        part once."""
        import pandas as pd

        from orchestrator.data.cache import cached_arrays, digest
        from orchestrator.data.timeseries import group_folds

        rec_key, names, arrays = _windows(data)
        x, y, groups, rec = arrays["x"], arrays["y"], arrays["groups"], arrays["rec"]
        tx, ty, tgroups = arrays["tx"], arrays["ty"], arrays["tgroups"]
        subjects = np.unique(groups)
        if search is not None and search[1] is not None:
            index, outer = search[1]
            _, test = group_folds(groups, outer, key="tune.nested.folds")[index]
            cuts = [np.unique(groups[test])]
        elif folds:
            cuts = [np.unique(groups[test]) for _, test in group_folds(groups, folds)]
        else:
            from orchestrator.data.timeseries import subject_split

            _, test_idx = subject_split(groups, _subjects(data.test_subjects), seed)
            cuts = [np.unique(groups[test_idx])]
        # (test subjects, validation subjects or None: drawn by data.val_subjects)
        parts: list[tuple[np.ndarray, np.ndarray | None]] = [(c, None) for c in cuts]
        if search is not None:
            test_subj = cuts[0]
            rest = ~np.isin(groups, test_subj)
            inner = group_folds(groups[rest], search[0],
                                where=" outside the test part")
            parts = [(test_subj, np.unique(groups[rest][held])) for _, held in inner]
        chosen = []  # (test, validation, training subjects) per split
        for k, (test_subj, val_subj) in enumerate(parts):
            rest = np.setdiff1d(subjects, test_subj)
            if val_subj is None:
                val_subj = _val_subjects(data.val_subjects, rest, seed + 1000 * (k + 1))
            train_subj = np.setdiff1d(rest, val_subj)
            if not len(train_subj):
                raise DataError(f"data.val_subjects: {data.val_subjects}: no training subject "
                                f"left ({len(rest)} subjects outside the test set)")
            chosen.append((test_subj, val_subj, train_subj))

        def build() -> dict[str, np.ndarray]:
            """Every split's shaped, augmented and standardized windows (the costly part)."""
            out = {}
            for k, (test_subj, val_subj, train_subj) in enumerate(chosen):
                train = np.isin(tgroups, train_subj)
                x_train, y_train, scaler = _preprocess_train(tx[train], ty[train], data,
                                                             [seed, k])
                out |= {f"{k}.x_train": x_train, f"{k}.y_train": y_train,
                        f"{k}.x_test": _preprocess(x[np.isin(groups, test_subj)], data, scaler),
                        f"{k}.x_val": _preprocess(x[np.isin(groups, val_subj)], data, scaler)}
                if scaler:
                    out |= {f"{k}.mean": scaler[0], f"{k}.std": scaler[1]}
            return out

        # Keyed by the windows, every data option, the seed and the subjects of each split: a
        # warm run reads its splits instead of augmenting and standardizing them again.
        ready, _ = cached_arrays("har-splits", {
            "windows": rec_key, "options": data.model_dump(mode="json"), "seed": seed,
            "splits": [[_ids(t), _ids(v), _ids(r)] for t, v, r in chosen]}, build)
        splits = []
        for k, (test_subj, val_subj, train_subj) in enumerate(chosen):
            val, test = np.isin(groups, val_subj), np.isin(groups, test_subj)
            scaled = f"{k}.mean" in ready
            info = {"test_subjects": _ids(test_subj), "val_subjects": _ids(val_subj),
                    "train_subjects": _ids(train_subj),
                    "scaler_mean": ready[f"{k}.mean"].tolist() if scaled else None,
                    "scaler_std": ready[f"{k}.std"].tolist() if scaled else None}
            splits.append(Split(ready[f"{k}.x_train"], ready[f"{k}.y_train"],
                                ready[f"{k}.x_val"] if val.any() else None,
                                y[val] if val.any() else None, ready[f"{k}.x_test"], y[test],
                                fold=k if folds or search else None, info=info))
        channels = list(names["channels"]) + ([f"|{'/'.join(t)}|" for t in
                                               _triples(names["channels"])]
                                              if data.magnitudes else [])
        table = pd.DataFrame({"subject": groups.astype(str), "label": y, "recording": rec,
                              "class": [names["classes"][i] for i in y]})
        meta = {"classes": len(names["classes"]), "class_names": tuple(names["classes"]),
                "channels": tuple(channels), "timesteps": x.shape[1] // data.downsample,
                "rate_hz": names["rate_hz"] / data.downsample}
        return Prepared(tuple(splits), digest("har", rec_key, data.model_dump(mode="json"),
                                              seed, folds, *([search] if search else [])),
                        names["source"], meta, table)

    # --- model --------------------------------------------------------------------------------

    def model_spec(self, model: HarModel, prepared: Prepared) -> ModelSpec:
        timesteps = int(prepared.meta["timesteps"])
        channels = len(prepared.meta["channels"])
        classes = int(prepared.meta["classes"])
        output = "linear" if model.logits else "softmax"
        if not (model.input_dense or model.head or model.norm != "none"):
            return networks.har_network(timesteps, channels, classes, units=model.units,
                                      depth=model.depth, cell=model.cell,
                                      dropout=model.dropout, output_activation=output)
        layers: list[specs.Layer] = []
        if model.input_dense:
            layers += [Dense(model.input_dense, "relu")]
        layers += [specs.recurrent(model.cell, model.units, return_sequences=k < model.depth - 1)
                   for k in range(model.depth)]
        if model.norm != "none":
            layers.append(specs.norm(model.norm))
        for width in model.head:
            if model.dropout:
                layers.append(Dropout(model.dropout))
            layers.append(Dense(width, "relu"))
        if model.dropout:
            layers.append(Dropout(model.dropout))
        layers.append(Dense(classes, output))
        return ModelSpec((timesteps, channels), tuple(layers), name="har_network")

    # --- metrics ------------------------------------------------------------------------------

    def epoch_metrics(self, model, split: Split, prepared: Prepared,
                      loss: ComponentSpec) -> dict[str, float]:
        return validation_accuracy(model, split)

    def evaluate(self, model, split: Split, prepared: Prepared, loss: ComponentSpec,
                 history: Mapping[str, list[float]]) -> Evaluation:
        import pandas as pd

        from orchestrator.evaluation.plots import confusion_matrix

        classes = int(prepared.meta["classes"])
        names = [str(c) for c in prepared.meta["class_names"]]
        probabilities = class_probabilities(model, split.x_test,
                                            loss.params.get("from_logits", False))
        predicted = probabilities.argmax(axis=-1)
        metrics, matrix = multiclass(split.y_test, predicted, classes, "test")
        if split.x_val is not None:
            val_pred = predict_in_batches(model, split.x_val).argmax(axis=-1)
            metrics.update(multiclass(split.y_val, val_pred, classes, "val")[0])
        held = ", ".join(split.info.get("test_subjects", ()))
        figure = confusion_matrix(matrix, names, f"har: test subjects {held}")
        frame = pd.DataFrame(matrix, index=names, columns=names).rename_axis("true").reset_index()
        return Evaluation(metrics, {"plots/confusion_matrix.png": figure},
                          texts={"split.json": _json(split.info)},
                          tables={"tables/confusion_matrix.csv": frame},
                          outputs=probabilities)

    def score_outputs(self, truth: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        return probability_scores(truth, outputs)


# --- helpers ----------------------------------------------------------------------------------


def _json(info: Mapping) -> str:
    import json

    return json.dumps(dict(info), indent=1, default=str)


def _ids(values: np.ndarray) -> list[str]:
    return [str(v) for v in np.asarray(values).tolist()]


def _subjects(value: Subjects) -> int | list:
    return value if isinstance(value, int) else list(value)


def _val_subjects(value: Subjects, candidates: np.ndarray, seed: int) -> np.ndarray:
    """Validation subjects drawn (or named) among ``candidates`` (the non-test subjects)."""
    if isinstance(value, int):
        if value == 0:
            return candidates[:0]
        if not 1 <= value < len(candidates):
            raise DataError(f"data.val_subjects: {value}: must be between 0 and "
                            f"{len(candidates) - 1} ({len(candidates)} subjects outside the "
                            "test set)")
        return np.sort(np.random.default_rng(seed).choice(candidates, size=value,
                                                           replace=False))
    known = {str(s): s for s in candidates.tolist()}
    unknown = [s for s in value if str(s) not in known]
    if unknown:
        raise DataError(f"data.val_subjects: {list(value)}: unknown or held out for testing: "
                        f"{unknown}; candidates: {', '.join(known)}")
    return np.asarray([known[str(s)] for s in value])


def _load(data: HarData):
    from orchestrator.data.timeseries import load_recordings_table, load_watch

    if data.source == "watch":
        return load_watch()
    try:
        return load_recordings_table(Path(data.source).expanduser(), channels=list(data.channels)
                                     if data.channels is not None else None, label=data.label,
                                     recording=data.recording, subject=data.subject,
                                     rate_hz=data.rate_hz)
    except DataError as exc:
        raise DataError(_rekey(str(exc))) from None


_ROLE_KEYS = {"label": "data.label", "recording": "data.recording", "subject": "data.subject",
              "channel": "data.channels"}


def _rekey(message: str) -> str:
    """The loader names the file as ``data.path``; this task's key is ``data.source``, or the
    column option when a named column is at fault."""
    if message.startswith("data.path: "):
        rest = message[len("data.path: "):]
        match = re.search(r": (label|recording|subject|channel) column '[^']*' not found", rest)
        key = _ROLE_KEYS[match.group(1)] if match else "data.source"
        message = f"{key}: {rest}"
    return message


def _windows(data: HarData) -> tuple[str, dict, dict[str, np.ndarray]]:
    """Cached windows: ``x/y/groups/rec`` at ``stride`` (validation and test) and
    ``tx/ty/tgroups`` at ``train_stride`` (training), raw units."""
    from orchestrator.data.cache import cached_arrays
    from orchestrator.data.timeseries import SkippedRecordingsWarning, windows

    if data.source == "watch":
        from orchestrator.data.packaged import PACKAGES, packaged_file
        from orchestrator.data.timeseries import WATCH_FILE

        source_key: object = {"package": "seglearn", "version": PACKAGES["seglearn"][1],
                              "file": packaged_file("seglearn", WATCH_FILE)}
    else:
        source_key = {"file": Path(data.source).expanduser(), "channels": data.channels,
                      "label": data.label, "recording": data.recording,
                      "subject": data.subject, "rate_hz": data.rate_hz}
    train_stride = data.train_stride or data.stride
    key = {"source": source_key, "window": data.window, "stride": data.stride,
           "train_stride": train_stride}
    loaded: dict = {}

    def build() -> dict[str, np.ndarray]:
        rec = _load(data)
        loaded["rec"] = rec
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedRecordingsWarning)
            x, y, groups, index = windows(rec, data.window, data.stride)
            tx, ty, tgroups, _ = windows(rec, data.window, train_stride)
        return {"x": x, "y": y, "groups": groups.astype(str), "rec": index, "tx": tx, "ty": ty,
                "tgroups": tgroups.astype(str),
                "classes": np.asarray(rec.class_names, dtype=str),
                "channels": np.asarray(rec.channel_names, dtype=str),
                "rate_hz": np.asarray([rec.rate_hz]), "source": np.asarray([rec.source])}

    try:
        arrays, key_digest = cached_arrays("har-windows", key, build)
    except DataError as exc:
        raise DataError(_rekey(str(exc))) from None
    if data.window % data.downsample:
        raise DataError(f"data.downsample: {data.downsample} must divide data.window "
                        f"({data.window})")
    names = {"classes": [str(c) for c in arrays["classes"]],
             "channels": [str(c) for c in arrays["channels"]],
             "rate_hz": float(arrays["rate_hz"][0]), "source": str(arrays["source"][0])}
    if data.augment.mirror and len(data.augment.mirror) != len(names["channels"]):
        raise DataError(f"data.augment.mirror: {len(data.augment.mirror)} signs for "
                        f"{len(names['channels'])} channels ({', '.join(names['channels'])})")
    if (data.magnitudes or data.augment.rotation_deg) and len(names["channels"]) % 3:
        what = "data.magnitudes" if data.magnitudes else "data.augment.rotation_deg"
        raise DataError(f"{what}: needs channels in x, y, z triples of one sensor frame; "
                        f"{names['source']} has {len(names['channels'])} channels "
                        f"({', '.join(names['channels'])})")
    return key_digest, names, arrays


def _triples(channels) -> list[tuple[str, ...]]:
    channels = list(channels)
    return [tuple(channels[i:i + 3]) for i in range(0, len(channels) - len(channels) % 3, 3)]


def _rotations(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    """``n`` rotation matrices about uniformly random axes by angles up to ``max_deg``."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg, size=n))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)  # Rodrigues


def _shape(x: np.ndarray, data: HarData) -> np.ndarray:
    """Downsampling, derived channels and centering (no fitted statistics)."""
    x = np.asarray(x, dtype=np.float32)
    if data.downsample > 1:
        n, t, c = x.shape
        x = x.reshape(n, t // data.downsample, data.downsample, c).mean(axis=2)
    if data.magnitudes:
        mags = [np.linalg.norm(x[..., i:i + 3], axis=-1, keepdims=True)
                for i in range(0, x.shape[-1] - x.shape[-1] % 3, 3)]
        x = np.concatenate([x, *mags], axis=-1)
    if data.center == "window":
        x = x - x.mean(axis=1, keepdims=True)
    return x.astype(np.float32)


def _preprocess_train(x: np.ndarray, y: np.ndarray, data: HarData, seed: list[int]):
    """Training windows: augmented copies (raw units), shaping, then the scaler fitted on the
    original training windows; jitter in standardized units."""
    from orchestrator.data.timeseries import ChannelScaler

    aug = data.augment
    rng = np.random.default_rng([*seed, 7])
    originals = _shape(x, data)
    scaler = ChannelScaler.fit(originals) if data.standardize else None
    parts, labels = [originals], [y]
    for _ in range(aug.copies):
        copy = np.array(x, dtype=np.float64)
        n, _t, c = copy.shape
        if aug.rotation_deg:
            rot = _rotations(rng, n, aug.rotation_deg)
            for i in range(0, c - c % 3, 3):  # one rotation per window, for every triple
                copy[..., i:i + 3] = np.einsum("ntj,nkj->ntk", copy[..., i:i + 3], rot)
        if aug.mirror:
            flip = rng.random(n) < 0.5
            copy[flip] *= np.asarray(aug.mirror, dtype=np.float64)
        if aug.scale:
            copy *= rng.uniform(1 - aug.scale, 1 + aug.scale, size=(n, 1, 1))
        shaped = _shape(copy, data)
        if aug.jitter:
            std = scaler.std if scaler else 1.0
            shaped = shaped + (rng.normal(0, aug.jitter, size=shaped.shape) * std)
        parts.append(shaped.astype(np.float32))
        labels.append(y)
    xs = np.concatenate(parts)
    if scaler is not None:
        xs = scaler.transform(xs)
    scaled = (scaler.mean.astype(np.float32), scaler.std.astype(np.float32)) if scaler else None
    return xs.astype(np.float32), np.concatenate(labels), scaled


def _preprocess(x: np.ndarray, data: HarData, scaler) -> np.ndarray:
    shaped = _shape(x, data)
    if scaler is None:
        return shaped
    return ((shaped - scaler[0]) / scaler[1]).astype(np.float32)
