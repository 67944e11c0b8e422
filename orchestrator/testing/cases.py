"""Inputs for the conformance kit: named, seeded cases that include the edge cases.

Each case is built from a seed so that every backend (and the reference) sees the same numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.canonical import catalogue, specs
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.specs import Activation, Dense, Dropout, Embedding, ModelSpec


@dataclass(frozen=True)
class LossCase:
    id: str
    spec: ComponentSpec
    y_true: np.ndarray
    y_pred: np.ndarray
    # Edge cases at exact 0/1 probabilities sit on the clipping boundary, where a central finite
    # difference straddles the kink; their gradient is checked against the analytic value 0.
    gradient_is_zero_where_clipped: bool = False


def _rng(*key: Any) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.02, 0.98, shape)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


def loss_cases() -> list[LossCase]:
    """Random and edge-case inputs for every canonical loss, probabilities and logits."""
    cases: list[LossCase] = []

    def add(case_id: str, name: str, y_true: np.ndarray, y_pred: np.ndarray,
            clipped: bool = False, **params: Any) -> None:
        spec = catalogue.resolve("loss", name, params)
        cases.append(LossCase(f"{name}-{case_id}", spec, y_true, y_pred, clipped))

    for name, extra in (("binary_crossentropy", {}), ("binary_focal", {}),
                        ("binary_focal", {"gamma": 0.5, "alpha": None}),
                        ("binary_focal", {"gamma": 0.0, "alpha": 0.75})):
        tag = "-".join(f"{k}{v}" for k, v in extra.items())
        rng = _rng(name, tag)
        y = rng.integers(0, 2, (16, 3)).astype(float)
        add(f"probs{tag}", name, y, _probs(rng, y.shape), **extra)
        add(f"logits{tag}", name, y, rng.normal(0, 3, y.shape), from_logits=True, **extra)
        add(f"saturated-logits{tag}", name, np.array([1.0, 0.0, 1.0, 0.0]),
            np.array([40.0, -40.0, -40.0, 40.0]), from_logits=True, **extra)
        add(f"batch-of-one{tag}", name, np.array([1.0]), np.array([0.3]), **extra)
        add(f"edge-probs{tag}", name, np.array([1.0, 0.0, 1.0, 0.0]),
            np.array([1.0, 0.0, 0.0, 1.0]), clipped=True, **extra)
        add(f"soft-labels{tag}", name, rng.uniform(0, 1, (8,)), _probs(rng, (8,)), **extra)

    classes = 5
    for name, extra in (("categorical_crossentropy", {}), ("categorical_focal", {}),
                        ("categorical_focal", {"gamma": 1.5,
                                               "alpha": [0.1, 0.2, 0.3, 0.25, 0.15]})):
        tag = "alpha" if extra.get("alpha") else ""
        rng = _rng(name, tag)
        labels = rng.integers(0, classes, (12,))
        logits = rng.normal(0, 2, (12, classes))
        add(f"probs{tag}", name, _one_hot(labels, classes), _softmax(logits), **extra)
        add(f"logits{tag}", name, _one_hot(labels, classes), logits, from_logits=True, **extra)
        add(f"saturated-logits{tag}", name, _one_hot(np.array([0, 1]), classes),
            np.array([[60.0, -60, 0, 0, 0], [60.0, -60, 0, 0, 0]]), from_logits=True, **extra)
        add(f"sequence{tag}", name, _one_hot(rng.integers(0, classes, (3, 4)), classes),
            rng.normal(0, 2, (3, 4, classes)), from_logits=True, **extra)
        add(f"batch-of-one{tag}", name, _one_hot(np.array([2]), classes),
            _softmax(rng.normal(0, 1, (1, classes))), **extra)
        edge = np.zeros((2, classes))
        edge[0, 0] = 1.0
        edge[1, 1] = 1.0
        add(f"edge-probs{tag}", name, _one_hot(np.array([0, 2]), classes), edge,
            clipped=True, **extra)

    rng = _rng("sparse")
    name = "sparse_categorical_crossentropy"
    labels = rng.integers(0, classes, (12,))
    logits = rng.normal(0, 2, (12, classes))
    add("probs", name, labels, _softmax(logits))
    add("logits", name, labels, logits, from_logits=True)
    add("saturated-logits", name, np.array([0, 1]),
        np.array([[80.0, -80, 0, 0, 0], [80.0, -80, 0, 0, 0]]), from_logits=True)
    add("sequence", name, rng.integers(0, classes, (3, 4)), rng.normal(0, 2, (3, 4, classes)),
        from_logits=True)
    add("batch-of-one", name, np.array([3]), _softmax(rng.normal(0, 1, (1, classes))))

    rng = _rng("triplet")
    add("explicit", "triplet", np.zeros(10), rng.normal(0, 1, (10, 3, 4)), margin=0.5)
    add("explicit-batch-of-one", "triplet", np.zeros(1), rng.normal(0, 1, (1, 3, 4)))
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1, 3])
    embeddings = rng.normal(0, 1, (9, 4))
    add("batch_all", "triplet", labels, embeddings, mining="batch_all", margin=1.0)
    add("batch_hard", "triplet", labels, embeddings, mining="batch_hard", margin=1.0)
    add("batch_hard-no-positive", "triplet", np.array([0, 1, 2]), rng.normal(0, 1, (3, 4)),
        mining="batch_hard")
    return cases + plugin_loss_cases()


def plugin_loss_cases() -> list[LossCase]:
    """Cases for the losses plugins added to the catalogue (``orchestrator_add_components``),
    from their target kind: random probabilities, logits (if the loss has ``from_logits``),
    sequence outputs and a batch of one, at the defaults and at each of the definition's
    ``examples``; checked against the definition's ``reference``."""
    cases: list[LossCase] = []
    classes = 5
    for definition in catalogue.definitions():
        if not definition.plugin or definition.kind != "loss":
            continue
        has_logits = any(p.name == "from_logits" for p in definition.params)
        for extra in ({}, *definition.examples):
            name, tag = definition.name, "-".join(f"{a}{b}" for a, b in extra.items())
            rng = _rng("plugin", name, tag)
            spec = catalogue.resolve("loss", name, extra)
            kind = spec.target
            if kind == "binary":
                y = rng.integers(0, 2, (16, 3)).astype(float)
                shapes = {"probs": (y, _probs(rng, y.shape)),
                          "logits": (y, rng.normal(0, 3, y.shape)),
                          "batch-of-one": (np.array([1.0]), np.array([0.3]))}
            elif kind in ("one_hot", "class_ids"):
                ids, seq = rng.integers(0, classes, (12,)), rng.integers(0, classes, (3, 4))
                target = (lambda a: _one_hot(a, classes)) if kind == "one_hot" else (lambda a: a)
                logits = rng.normal(0, 2, (12, classes))
                # probabilities >= ~0.03: a central difference of log p stays accurate where
                # a loss weights every class (a small p's log bends too fast for 2e-6)
                shapes = {"probs": (target(ids), _softmax(rng.normal(0, 0.7, (12, classes)))),
                          "logits": (target(ids), logits),
                          "sequence": (target(seq), rng.normal(0, 2, (3, 4, classes))),
                          "batch-of-one": (target(np.array([2])),
                                           _softmax(rng.normal(0, 0.7, (1, classes))))}
            elif kind == "labels":
                shapes = {"embeddings": (np.array([0, 0, 1, 1, 2, 2, 0, 1, 3]),
                                         rng.normal(0, 1, (9, 4)))}
            else:
                continue  # "none": the kit cannot know what the predictions hold
            for case_id, (y_true, y_pred) in shapes.items():
                logits_case = case_id in ("logits", "sequence")
                if logits_case and not has_logits:
                    if case_id == "logits":
                        continue
                    y_pred = _softmax(y_pred)
                params = {**extra, **({"from_logits": True} if logits_case and has_logits
                                      else {})}
                cases.append(LossCase(f"{name}-{case_id}{'-' + tag if tag else ''}",
                                      catalogue.resolve("loss", name, params), y_true, y_pred))
    return cases


# --- layers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCase:
    id: str
    spec: ModelSpec
    x: np.ndarray
    seed: int = 0

    @property
    def components(self) -> list[tuple[str, str]]:
        """(kind, name) of the catalogue components this case exercises."""
        out = []
        for layer in self.spec.layers:
            component = getattr(layer, "component", None)
            if component is not None:
                out.append((component.kind, component.name))
        return out


def layer_cases() -> list[LayerCase]:
    """Single norm / recurrent layers (and dense, embedding) with random weights and inputs."""
    cases: list[LayerCase] = []
    rng = _rng("layers")
    for cell in ("rnn", "lstm", "bilstm"):
        activations = ("tanh", "sigmoid", "relu") if cell == "rnn" else (None,)
        for act in activations:
            params = {"activation": act} if act else {}
            for seq in (True, False):
                for batch, steps in ((3, 5), (1, 1)):
                    layer = specs.recurrent(cell, 4, return_sequences=seq, **params)
                    spec = ModelSpec((steps, 3), (layer,), name=cell)
                    case_id = (f"{cell}{'-' + act if act else ''}-{'seq' if seq else 'last'}"
                               f"-b{batch}-t{steps}")
                    cases.append(LayerCase(case_id, spec, rng.normal(0, 1, (batch, steps, 3))))
    stacked = ModelSpec((6, 3), (specs.recurrent("bilstm", 3, return_sequences=True),
                                 specs.recurrent("lstm", 2)), name="stacked")
    cases.append(LayerCase("stacked-bilstm-lstm", stacked, rng.normal(0, 1, (2, 6, 3))))
    for kind in ("batch", "layer", "none"):
        for shape, batch in (((6,), 8), ((4, 5), 3)):
            spec = ModelSpec(shape, (specs.norm(kind),), name=kind)
            x = rng.normal(1.5, 2.0, (batch, *shape))
            cases.append(LayerCase(f"norm-{kind}-rank{len(shape) + 1}", spec, x))
    spec = ModelSpec((3,), (specs.norm("batch", momentum=0.3, eps=1e-3),), name="batch")
    cases.append(LayerCase("norm-batch-momentum0.3-eps1e-3", spec, rng.normal(-1, 3, (5, 3))))
    spec = ModelSpec((6,), (Dense(4, "tanh"), Dense(3, "softmax")), name="dense")
    cases.append(LayerCase("dense-tanh-softmax", spec, rng.normal(0, 1, (5, 6))))
    spec = ModelSpec((4,), (Embedding(7, 3), specs.recurrent("lstm", 2, return_sequences=True)),
                     input_dtype="int", name="embedding")
    cases.append(LayerCase("embedding-lstm", spec, rng.integers(0, 7, (2, 4))))
    # A large eps: a norm that ignores it (the framework's default instead), or adds it outside
    # the square root, is off by percents here, not by 1e-6 as at the default eps.
    for kind in ("batch", "layer"):
        spec = ModelSpec((4, 5), (specs.norm(kind, eps=0.5),), name=kind)
        cases.append(LayerCase(f"norm-{kind}-eps0.5", spec, rng.normal(1.0, 1.0, (3, 4, 5))))
    return cases


def rnn_slide_weights() -> dict[str, np.ndarray]:
    """The lecture's RNN example (x = [1, 1]); thresholds theta are subtracted (bias = -theta)."""
    w13, w23, theta3, w14, w24, theta4 = 0.5, 0.4, 0.8, 0.9, 1.0, -0.1
    w35, w45, theta5 = -1.2, 1.1, 0.3
    return {
        "0.kernel": np.array([[w13, w14], [w23, w24]]),
        "0.recurrent_kernel": np.zeros((2, 2)),
        "0.bias": np.array([-theta3, -theta4]),
        "1.kernel": np.array([[w35], [w45]]),
        "1.bias": np.array([-theta5]),
    }


def rnn_slide_spec() -> ModelSpec:
    return ModelSpec((1, 2), (specs.recurrent("rnn", 2, activation="sigmoid"),
                              Dense(1, "sigmoid")), name="rnn_slide")


def dropout_spec(rate: float, features: int = 500) -> ModelSpec:
    """A lone dropout layer, for the statistical dropout test."""
    return ModelSpec((features,), (Dropout(rate),), name=f"dropout{rate}")


# --- models for one training step ------------------------------------------------------------


@dataclass(frozen=True)
class TrainingCase:
    id: str
    spec: ModelSpec
    loss: ComponentSpec
    make_batch: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


def trajectory_case() -> TrainingCase:
    """A small network without batch statistics or dropout (so that a forward pass has no side
    effect and the backend's own gradients can be replayed exactly): dense, tanh, dense logits,
    sparse cross entropy."""
    def make(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(0, 1, (6, 5)), rng.integers(0, 3, (6,))

    return TrainingCase("dense-tanh-dense", ModelSpec((5,), (Dense(4, "tanh"), Dense(3)),
                                                      name="trajectory"),
                        catalogue.resolve("loss", "sparse_categorical_crossentropy",
                                          {"from_logits": True}), make)


def training_cases() -> list[TrainingCase]:
    """Small networks of every layer kind, each with a loss that fits its output."""

    def classes(n: int, shape: tuple[int, ...], one_hot: bool = False):
        def make(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            x = rng.normal(0, 1, (6, *shape))
            y = rng.integers(0, n, (6,))
            return x, (_one_hot(y, n) if one_hot else y)
        return make

    def tokens(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return rng.integers(0, 9, (3, 5)), rng.integers(0, 9, (3, 5))

    def binary(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(0, 1, (8, 5)), rng.integers(0, 2, (8, 1)).astype(float)

    loss = catalogue.resolve
    return [
        TrainingCase("mlp-batchnorm", ModelSpec((5,), (
            Dense(6), specs.norm("batch"), Activation("relu"), Dense(4, "softmax"))),
            loss("loss", "categorical_crossentropy"), classes(4, (5,), one_hot=True)),
        TrainingCase("mlp-layernorm-focal", ModelSpec((5,), (
            Dense(6), specs.norm("layer"), Activation("tanh"), Dense(1))),
            loss("loss", "binary_focal", {"from_logits": True}), binary),
        TrainingCase("bilstm-stack", ModelSpec((4, 3), (
            specs.recurrent("bilstm", 3, return_sequences=True), specs.recurrent("bilstm", 2),
            Dropout(0.0), Dense(3, "softmax"))),
            loss("loss", "categorical_crossentropy"), classes(3, (4, 3), one_hot=True)),
        # LSTM gate-bias options (drawn in NumPy): the same initial weights on every backend
        TrainingCase("lstm-gate-init", ModelSpec((4, 3), (
            specs.recurrent("bilstm", 3, return_sequences=True, forget_bias=3.0),
            specs.recurrent("lstm", 2, chrono=8), Dense(3))),
            loss("loss", "sparse_categorical_crossentropy", {"from_logits": True}),
            classes(3, (4, 3))),
        TrainingCase("rnn", ModelSpec((4, 3), (specs.recurrent("rnn", 3), Dense(3))),
                     loss("loss", "sparse_categorical_crossentropy", {"from_logits": True}),
                     classes(3, (4, 3))),
        TrainingCase("char-lstm", ModelSpec((5,), (
            Embedding(9, 3), specs.recurrent("lstm", 4, return_sequences=True), Dense(9)),
            input_dtype="int"),
            loss("loss", "sparse_categorical_crossentropy", {"from_logits": True}), tokens),
    ]
