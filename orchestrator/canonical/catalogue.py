"""The canonical components: one name, one formula and one set of hyperparameter defaults each.

This module is the single source of truth for what a component *means*. A backend never chooses a
default: every spec that reaches a backend has been resolved here, so a learning rate, an epsilon or
a momentum means the same thing on every framework. The formulas themselves are written down once,
in ``docs/canonical.md``; the short ``formula`` strings below are their one-line summaries.

Pure data and validation: importing this module imports no framework.

Plugins may add components (``register``, called by the plugin manager for the
``orchestrator_add_components`` hook): a new definition with its NumPy reference formula. The
lecture's components (``core_names``) are the ones every complete backend provides; a
plugin's component is optional for backends, which implement it where a plugin says so.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("loss", "optimizer", "norm", "recurrent")

# What a loss's ``y_true`` holds, for predictions ``y_pred`` of shape [batch, ..., K]:
# - "binary": float targets in [0, 1] of y_pred's shape (one per output, soft labels allowed);
# - "one_hot": float class distributions of y_pred's shape (the last axis holds the K classes);
# - "class_ids": integer class ids in [0, K) of shape y_pred.shape[:-1];
# - "labels": integer identities of shape y_pred.shape[:-1] (any integers: compared for equality);
# - "none": y_true is not read.
TARGETS = ("binary", "one_hot", "class_ids", "labels", "none")


class ComponentError(ValueError):
    """A component name or hyperparameter that the catalogue does not accept."""


class DuplicateComponentError(ComponentError):
    """A plugin's component whose name another plugin or the lecture's catalogue defines."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its canonical name, type, default and the values it admits."""

    name: str
    default: Any
    doc: str
    kind: type | tuple[type, ...] = float
    check: Callable[[Any], bool] | None = None
    allowed: str = ""  # human words for `check`, used in error messages

    def validate(self, value: Any, where: str) -> Any:
        if value is None and self.default is None:
            return None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is bool and not isinstance(value, bool):
            raise ComponentError(f"{where}: expected true or false, got {value!r}")
        if isinstance(value, bool) and self.kind is not bool:
            raise ComponentError(f"{where}: expected {_type_words(self.kind)}, got {value!r}")
        if not isinstance(value, self.kind):
            raise ComponentError(f"{where}: expected {_type_words(self.kind)}, got "
                                 f"{_echo(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ComponentError(f"{where}: {value!r} is not allowed (a finite number)")
        if isinstance(value, (list, tuple)) and any(
                isinstance(v, float) and not math.isfinite(v) for v in value):
            raise ComponentError(f"{where}: {_echo(value)} is not allowed (finite numbers)")
        if self.check is not None and not self.check(value):
            raise ComponentError(f"{where}: {_echo(value)} is not allowed ({self.allowed})")
        return value


def _echo(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters for an error message."""
    if isinstance(value, (list, tuple)) and len(value) > limit:
        value = value[:limit]
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit + 1]
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<an integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class ComponentDef:
    """A canonical component: kind, name, a one-line formula and its hyperparameters."""

    kind: str
    name: str
    summary: str
    formula: str
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    full_batch: bool = False  # optimizers only: one update per pass over the training set
    # losses only: the kind of y_true (one of TARGETS), or a function of the resolved params
    target: str | Callable[[Mapping[str, Any]], str] = ""
    # optimizers only: per-parameter state, (slot name, initial value), the value a number or
    # the name of the hyperparameter that holds it
    state: tuple[tuple[str, float | str], ...] = ()
    # added by a plugin (``register``): the NumPy float64 reference of the formula, called as
    # ``reference(y_true, y_pred, **params) -> float`` for a loss (the conformance kit compares
    # every backend with it), the parameter sets the kit checks (defaults always), and the
    # plugin's name ("" for the lecture's components, which the reference modules implement)
    reference: Callable[..., float] | None = field(default=None, compare=False)
    examples: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)
    plugin: str = field(default="", compare=False)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def target_of(self, params: Mapping[str, Any]) -> str:
        """The kind of y_true (one of ``TARGETS``) this loss reads with ``params``."""
        if self.kind != "loss":
            raise ComponentError(f"{self.kind} {self.name!r} has no target: only losses do")
        return self.target(params) if callable(self.target) else self.target

    def initial_state(self, params: Mapping[str, Any]) -> dict[str, float]:
        """Optimizers: each state slot's initial value (zero unless the rule says otherwise)."""
        return {slot: float(params[value] if isinstance(value, str) else value)
                for slot, value in self.state}


@dataclass(frozen=True)
class ComponentSpec:
    """A resolved component: canonical name and *every* hyperparameter, defaults filled in.

    This is what crosses the plugin boundary; backends read ``params`` and never apply defaults
    of their own.
    """

    kind: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def definition(self) -> ComponentDef:
        return get(self.kind, self.name)

    @property
    def target(self) -> str:
        """Losses: what ``y_true`` holds (one of ``TARGETS``)."""
        return self.definition.target_of(self.params)


# --- value checks -----------------------------------------------------------------------------


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


def _unit_open(v: float) -> bool:
    return 0 <= v < 1


def _unit_closed(v: float) -> bool:
    return 0 <= v <= 1


def _alpha_vector(v: Any) -> bool:
    return v is None or (
        isinstance(v, (list, tuple))
        and len(v) > 0
        and all(isinstance(a, (int, float)) and not isinstance(a, bool) and a >= 0 for a in v)
    )


def _type_words(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    words = {float: "a number", int: "an integer", bool: "true or false", str: "a string",
             list: "a list", tuple: "a list", type(None): "null"}
    return " or ".join(dict.fromkeys(words.get(k, k.__name__) for k in kinds))


_FROM_LOGITS = Param("from_logits", False, "inputs are logits (stable log-sum-exp path) rather than "
                     "probabilities (clipped to [1e-7, 1 - 1e-7])", bool)
_LR = "learning rate eta"


# initialization of the LSTM gate biases (drawn in NumPy by canonical.initializers, so the same
# numbers on every backend; the forward computation does not depend on them)
_LSTM_INIT = (
    Param("forget_bias", 1.0, "initial forget-gate bias (constant; 1: Jozefowicz et al. 2015)",
          float, lambda v: -20 <= v <= 20, "-20 <= forget_bias <= 20"),
    Param("chrono", None, "chrono initialization (Tallec & Ollivier 2018) for dependencies up "
          "to T_max steps: forget bias log U(1, T_max - 1), input bias its negative (null: "
          "off; replaces forget_bias)", int, lambda v: 3 <= v <= 1_000_000,
          "an integer T_max >= 3"),
)


MAX_LR = 10.0  # beyond this every optimizer here diverges; a typo (1e3 for 1e-3) is refused


def _lr(default: float) -> Param:
    return Param("lr", default, _LR, float, lambda v: 0 < v <= MAX_LR,
                 f"0 < lr <= {MAX_LR:g}")


def _momentum(default: float = 0.9) -> Param:
    return Param("momentum", default, "momentum gamma", float, _unit_open, "0 <= momentum < 1")


def _eps(default: float, where: str) -> Param:
    return Param("eps", default, f"epsilon, {where}", float, _positive, "must be > 0")


def _beta(name: str, default: float, doc: str) -> Param:
    return Param(name, default, doc, float, _unit_open, f"0 <= {name} < 1")


# --- the catalogue ----------------------------------------------------------------------------

_DEFS: tuple[ComponentDef, ...] = (
    # losses: every loss is a mean over samples (and over time steps for sequence outputs).
    ComponentDef(
        "loss", "binary_crossentropy", "binary cross entropy",
        "-[y log p + (1 - y) log(1 - p)]", (_FROM_LOGITS,), aliases=("bce",), target="binary"),
    ComponentDef(
        "loss", "categorical_crossentropy", "categorical cross entropy on one-hot targets",
        "-sum_i y_i log p_i", (_FROM_LOGITS,), aliases=("cce",), target="one_hot"),
    ComponentDef(
        "loss", "sparse_categorical_crossentropy", "categorical cross entropy on integer targets",
        "-log p_y", (_FROM_LOGITS,), aliases=("scce",), target="class_ids"),
    ComponentDef(
        "loss", "binary_focal", "binary focal loss (Lin et al. 2017)",
        "-alpha_t (1 - p_t)^gamma log p_t, alpha_t = alpha if y = 1 else 1 - alpha",
        (Param("gamma", 2.0, "focusing parameter", float, _non_negative, "must be >= 0"),
         Param("alpha", 0.25, "weight of the positive class (null: no class weighting)",
               (float, type(None)), lambda v: v is None or 0 <= v <= 1, "0 <= alpha <= 1 or null"),
         _FROM_LOGITS), target="binary"),
    ComponentDef(
        "loss", "categorical_focal", "multiclass focal loss with a per-class alpha",
        "-sum_i alpha_i (1 - p_i)^gamma y_i log p_i",
        (Param("gamma", 2.0, "focusing parameter", float, _non_negative, "must be >= 0"),
         Param("alpha", None, "per-class weights alpha_i, one per class (null: all 1)",
               (list, tuple, type(None)), _alpha_vector, "a list of numbers >= 0, or null"),
         _FROM_LOGITS), target="one_hot"),
    ComponentDef(
        "loss", "triplet", "triplet loss on squared L2 distances",
        "max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + margin, 0)",
        (Param("margin", 0.2, "margin alpha", float, _non_negative, "must be >= 0"),
         Param("mining", "none", "none: y_pred holds (anchor, positive, negative) triplets as "
               "[batch, 3, dim]; batch_all / batch_hard: y_pred holds [batch, dim] embeddings "
               "and y_true their labels", str,
               lambda v: v in ("none", "batch_all", "batch_hard"), "none, batch_all or batch_hard")),
        target=lambda p: "none" if p["mining"] == "none" else "labels"),
    # optimizers: g is the gradient, t counts steps from 1.
    ComponentDef(
        "optimizer", "gd", "full-batch gradient descent",
        "theta -= lr * g, g the gradient of the mean loss over the whole training set",
        (_lr(0.01),), full_batch=True),
    ComponentDef("optimizer", "sgd", "stochastic (mini-batch) gradient descent",
                 "theta -= lr * g", (_lr(0.01),)),
    ComponentDef("optimizer", "momentum", "SGD with momentum (lr inside the velocity)",
                 "v = momentum * v + lr * g; theta -= v", (_lr(0.01), _momentum()),
                 state=(("v", 0.0),)),
    ComponentDef("optimizer", "nesterov", "Nesterov accelerated gradient",
                 "v = momentum * v + lr * g; theta -= momentum * v + lr * g",
                 (_lr(0.01), _momentum()), aliases=("nag",), state=(("v", 0.0),)),
    ComponentDef(
        "optimizer", "adagrad", "Adagrad",
        "G += g^2; theta -= lr * g / sqrt(G + eps)",
        (_lr(0.01), Param("initial_accumulator", 0.0, "initial value of G", float, _non_negative,
                          "must be >= 0"), _eps(1e-7, "inside the square root")),
        state=(("G", "initial_accumulator"),)),
    ComponentDef(
        "optimizer", "rmsprop", "RMSProp",
        "s = rho * s + (1 - rho) * g^2; theta -= lr * g / sqrt(s + eps)",
        (_lr(1e-3), _beta("rho", 0.9, "decay rate beta of the squared-gradient average"),
         _eps(1e-7, "inside the square root")), state=(("s", 0.0),)),
    ComponentDef(
        "optimizer", "adam", "Adam (Kingma & Ba 2015, Algorithm 1)",
        "m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; "
        "theta -= lr * m_hat / (sqrt(v_hat) + eps)",
        (_lr(1e-3), _beta("beta1", 0.9, "decay of the first moment"),
         _beta("beta2", 0.999, "decay of the second moment"),
         _eps(1e-8, "outside the square root of the bias-corrected v")),
        state=(("m", 0.0), ("v", 0.0))),
    ComponentDef(
        "optimizer", "adamw", "Adam with decoupled weight decay (Loshchilov & Hutter 2019)",
        "theta -= lr * weight_decay * theta; then the Adam update",
        (_lr(1e-3), _beta("beta1", 0.9, "decay of the first moment"),
         _beta("beta2", 0.999, "decay of the second moment"),
         _eps(1e-8, "outside the square root of the bias-corrected v"),
         Param("weight_decay", 0.01, "decoupled decay, scaled by lr, on every trainable weight",
               float, _non_negative, "must be >= 0")), state=(("m", 0.0), ("v", 0.0))),
    # norms: applied over the last (feature) axis.
    ComponentDef("norm", "none", "identity", "y = x"),
    ComponentDef(
        "norm", "batch", "batch normalization (Ioffe & Szegedy 2015)",
        "y = gamma (x - mean_B) / sqrt(var_B + eps) + beta; running = (1 - momentum) running "
        "+ momentum batch, running variance unbiased (n - 1)",
        (Param("momentum", 0.1, "weight of the current batch in the running statistics",
               float, lambda v: 0 < v <= 1, "0 < momentum <= 1"),
         _eps(1e-5, "added to the variance"))),
    ComponentDef(
        "norm", "layer", "layer normalization (Ba et al. 2016)",
        "y = gamma (x - mean_features) / sqrt(var_features + eps) + beta",
        (_eps(1e-5, "added to the variance"),)),
    # recurrent layers: batch-first [batch, time, features]; h0 = c0 = 0.
    ComponentDef(
        "recurrent", "rnn", "simple (Elman) recurrent layer",
        "h_t = act(x_t W + h_{t-1} U + b)",
        (Param("activation", "tanh", "activation act", str,
               lambda v: v in ("tanh", "sigmoid", "relu"), "tanh, sigmoid or relu"),)),
    ComponentDef(
        "recurrent", "lstm", "long short-term memory (Hochreiter & Schmidhuber 1997)",
        "[i f g o] = x_t W + h_{t-1} U + b; c_t = s(f) c_{t-1} + s(i) tanh(g); "
        "h_t = s(o) tanh(c_t)", _LSTM_INIT),
    ComponentDef(
        "recurrent", "bilstm", "bidirectional LSTM, outputs concatenated [forward, backward]",
        "h_t = [lstm_fwd(x)_t, lstm_bwd(reversed x)_(T-t)]", _LSTM_INIT),
)

_BY_KEY: dict[tuple[str, str], ComponentDef] = {(d.kind, d.name): d for d in _DEFS}
_ALIASES: dict[tuple[str, str], str] = {(d.kind, a): d.name for d in _DEFS for a in d.aliases}
# kinds a plugin may add to: the ones whose reference the conformance kit checks generically
PLUGGABLE_KINDS = ("loss",)


def names(kind: str) -> tuple[str, ...]:
    """Canonical names of one kind, in catalogue order (the lecture's first, then the ones
    plugins registered)."""
    _check_kind(kind)
    return tuple(d.name for d in _BY_KEY.values() if d.kind == kind)


def all_names() -> dict[str, tuple[str, ...]]:
    """Every known component by kind, the plugins' included."""
    return {kind: names(kind) for kind in KINDS}


def core_names() -> dict[str, tuple[str, ...]]:
    """The lecture's components, by kind: the full list a complete backend provides (a plugin's
    components are optional)."""
    return {kind: tuple(d.name for d in _DEFS if d.kind == kind) for kind in KINDS}


def definitions() -> tuple[ComponentDef, ...]:
    """Every definition: the lecture's, then the plugins'."""
    return tuple(_BY_KEY.values())


def register(definition: ComponentDef, plugin: str = "") -> ComponentDef:
    """Add a plugin's component (see ``orchestrator_add_components``); returns it with
    ``plugin`` set. Registering the same name again from the same plugin replaces it (a plugin
    manager built twice); a name or alias that is taken raises ``ComponentError``."""
    import dataclasses

    if not isinstance(definition, ComponentDef):
        raise ComponentError(f"expected a ComponentDef, got {type(definition).__name__}")
    if definition.kind not in PLUGGABLE_KINDS:
        raise ComponentError(f"plugins can add components of kind {', '.join(PLUGGABLE_KINDS)}; "
                             f"got {definition.kind!r} ({definition.name!r})")
    if not definition.name.isidentifier() or definition.name != definition.name.lower():
        raise ComponentError(f"component name must be lower snake_case, got {definition.name!r}")
    if definition.target not in TARGETS and not callable(definition.target):
        raise ComponentError(f"loss {definition.name!r}: target must be one of "
                             f"{', '.join(TARGETS)} (or a function of the params)")
    if not callable(definition.reference):
        raise ComponentError(f"loss {definition.name!r}: reference (its NumPy formula) is "
                             "required: the conformance kit checks every backend against it")
    definition = dataclasses.replace(definition, plugin=plugin)
    for word in (definition.name, *definition.aliases):
        key = (definition.kind, _ALIASES.get((definition.kind, word), word))
        taken = _BY_KEY.get(key)
        if taken is not None and not (taken.plugin and taken.plugin == plugin):
            owner = f"plugin {taken.plugin!r}" if taken.plugin else "the lecture's catalogue"
            raise DuplicateComponentError(f"{definition.kind} {word!r} is already defined by "
                                          f"{owner}")
    key = (definition.kind, definition.name)
    _BY_KEY[key] = definition
    for alias in definition.aliases:
        _ALIASES[(definition.kind, alias)] = definition.name
    return definition


def unregister_plugins() -> None:
    """Forget every plugin's component (the plugin manager rebuilds its state)."""
    for key, definition in list(_BY_KEY.items()):
        if definition.plugin:
            del _BY_KEY[key]
    for key, name in list(_ALIASES.items()):
        if (key[0], name) not in _BY_KEY:
            del _ALIASES[key]


def closest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The closest spelling among ``choices``, for 'did you mean' messages."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return match[0] if match else None


def unknown_message(what: str, word: str, choices: tuple[str, ...] | list[str]) -> str:
    hint = closest(str(word)[:200], choices)
    message = f"unknown {what} {_echo(word)}"
    if hint:
        message += f" (did you mean {hint!r}?)"
    return f"{message}; allowed: {', '.join(choices)}"


def get(kind: str, name: str) -> ComponentDef:
    """The definition of a component by kind and canonical name (or alias)."""
    _check_kind(kind)
    canonical = _ALIASES.get((kind, name), name)
    try:
        return _BY_KEY[(kind, canonical)]
    except KeyError:
        raise ComponentError(unknown_message(kind, name, names(kind))) from None


def resolve(kind: str, name: str, params: Mapping[str, Any] | None = None,
            where: str = "") -> ComponentSpec:
    """Validate ``params`` against the catalogue and fill in every default.

    ``where`` prefixes error messages (for example the YAML key path).
    """
    definition = get(kind, name)
    prefix = f"{where}: " if where else ""
    given = dict(params or {})
    allowed = tuple(p.name for p in definition.params)
    for key in given:
        if key not in allowed:
            hint = closest(key, allowed)
            raise ComponentError(
                f"{prefix}{definition.name} has no hyperparameter {key!r}"
                + (f" (did you mean {hint!r}?)" if hint else "")
                + f"; allowed: {', '.join(allowed) or 'none'}")
    resolved = {}
    for p in definition.params:
        value = given.get(p.name, p.default)
        value = p.validate(value, f"{prefix}{definition.name}.{p.name}")
        if isinstance(value, list):
            value = tuple(float(v) for v in value)
        resolved[p.name] = value
    return ComponentSpec(kind, definition.name, resolved)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ComponentError(unknown_message("component kind", kind, KINDS))
