"""The canonical optimizers as TF-op updates on tf.Variables (no Keras optimizer classes).

Keras' optimizers differ from the canonical formulas (Adam's epsilon-hat form, Adagrad's initial
accumulator, lr scaling of weight decay, see NUMERICS.md), so the updates are written here once.
All state lives in variables created eagerly at construction, so ``apply`` can run inside a
``tf.function`` (the training step) without creating variables while tracing, and a changed
learning rate is a variable assignment rather than a retrace.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.canonical.catalogue import ComponentSpec

from ._tf import tf

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")

# Per-variable state slots and their initial value (None: the initial_accumulator parameter).
_SLOTS: dict[str, tuple[tuple[str, float | None], ...]] = {
    "gd": (), "sgd": (),
    "momentum": (("velocity", 0.0),), "nesterov": (("velocity", 0.0),),
    "adagrad": (("accumulator", None),), "rmsprop": (("mean_square", 0.0),),
    "adam": (("m", 0.0), ("v", 0.0)), "adamw": (("m", 0.0), ("v", 0.0)),
}


class CanonicalOptimizer:
    """One canonical optimizer bound to a list of variables.

    ``apply(grads)`` performs one step ``t -> t + 1`` in TF ops; ``grads`` are in the order of
    ``variables``. Call it eagerly or from inside a ``tf.function``.
    """

    def __init__(self, spec: ComponentSpec, variables: Sequence[tf.Variable], dtype: str) -> None:
        if spec.kind != "optimizer":
            raise ValueError(f"expected an optimizer component, got a {spec.kind} ({spec.name!r})")
        if spec.name not in OPTIMIZERS:
            raise ValueError(f"the tensorflow backend has no optimizer {spec.name!r}; "
                             f"allowed: {', '.join(OPTIMIZERS)}")
        self.spec = spec
        self.dtype = tf.as_dtype(dtype)
        self.variables = list(variables)
        self.full_batch = spec.definition.full_batch
        p = spec.params
        self.lr = tf.Variable(p["lr"], dtype=self.dtype, trainable=False, name="lr")
        self.step = tf.Variable(0.0, dtype=self.dtype, trainable=False, name="step")
        self.slots: dict[str, list[tf.Variable]] = {}
        for slot, init in _SLOTS[spec.name]:
            value = p["initial_accumulator"] if init is None else init
            self.slots[slot] = [
                tf.Variable(tf.fill(tf.shape(v), tf.constant(value, self.dtype)),
                            trainable=False, name=f"{slot}_{k}")
                for k, v in enumerate(self.variables)]

    def set_learning_rate(self, lr: float) -> None:
        self.lr.assign(lr)

    def apply(self, grads: Sequence[tf.Tensor]) -> None:
        """One update of every variable with its gradient."""
        if len(grads) != len(self.variables):
            raise ValueError(f"got {len(grads)} gradients for {len(self.variables)} variables")
        self.step.assign_add(1.0)
        name, p, lr = self.spec.name, self.spec.params, self.lr
        # convert_to_tensor densifies IndexedSlices (embedding gradients).
        grads = [tf.cast(tf.convert_to_tensor(g), self.dtype) for g in grads]
        # A Python loop over variables is unrolled once at trace time into one graph.
        if name in ("gd", "sgd"):
            for var, g in zip(self.variables, grads):
                var.assign_sub(lr * g)
        elif name in ("momentum", "nesterov"):
            mu = p["momentum"]
            for var, g, v in zip(self.variables, grads, self.slots["velocity"]):
                v.assign(mu * v + lr * g)  # lr inside the velocity (lecture form)
                var.assign_sub(mu * v + lr * g if name == "nesterov" else v)
        elif name == "adagrad":
            eps = p["eps"]
            for var, g, acc in zip(self.variables, grads, self.slots["accumulator"]):
                acc.assign_add(tf.square(g))
                var.assign_sub(lr * g / tf.sqrt(acc + eps))  # eps inside the square root
        elif name == "rmsprop":
            rho, eps = p["rho"], p["eps"]
            for var, g, s in zip(self.variables, grads, self.slots["mean_square"]):
                s.assign(rho * s + (1.0 - rho) * tf.square(g))
                var.assign_sub(lr * g / tf.sqrt(s + eps))  # eps inside the square root
        else:  # adam, adamw
            self._adam(grads)

    def _adam(self, grads: Sequence[tf.Tensor]) -> None:
        p, lr = self.spec.params, self.lr
        b1, b2, eps = p["beta1"], p["beta2"], p["eps"]
        decay = p.get("weight_decay", 0.0) if self.spec.name == "adamw" else 0.0
        t = self.step.read_value()
        correction1 = 1.0 - tf.pow(tf.constant(b1, self.dtype), t)
        correction2 = 1.0 - tf.pow(tf.constant(b2, self.dtype), t)
        for var, g, m, v in zip(self.variables, grads, self.slots["m"], self.slots["v"]):
            if decay:
                var.assign_sub(lr * decay * var)  # decoupled decay first, scaled by lr
            m.assign(b1 * m + (1.0 - b1) * g)
            v.assign(b2 * v + (1.0 - b2) * tf.square(g))
            # Algorithm 1 of the paper: eps added to sqrt of the bias-corrected v (not epsilon-hat).
            var.assign_sub(lr * (m / correction1) / (tf.sqrt(v / correction2) + eps))
