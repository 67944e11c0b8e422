"""The canonical optimizers as TF-op updates on tf.Variables (no Keras optimizer classes).

Keras' optimizers differ from the canonical formulas (Adam's epsilon-hat form, Adagrad's initial
accumulator, lr scaling of weight decay, see docs/canonical.md), so the updates are written here
once; ``UPDATES`` is the backend's table (canonical name -> update rule). All state lives in
variables created eagerly at construction, so ``apply`` can run inside a ``tf.function`` (the
training step) without creating variables while tracing, and a changed learning rate is a
variable assignment rather than a retrace. A Python loop over variables is unrolled once at
trace time into one graph.
"""

from __future__ import annotations

from typing import Any

from orchestrator.contract.optimizer import Optimizer

from ._tf import tf

Variables = list[tf.Variable]
Tensors = list[tf.Tensor]


class TensorFlowOptimizer(Optimizer):
    """Updates tf.Variables; call ``step`` eagerly or from inside a ``tf.function``."""

    def setup(self) -> None:
        self.tf_dtype = tf.as_dtype(self.dtype)
        self.lr = tf.Variable(0.0, dtype=self.tf_dtype, trainable=False, name="lr")
        self.t = tf.Variable(0.0, dtype=self.tf_dtype, trainable=False, name="step")

    def new_slot(self, variable: tf.Variable, value: float) -> tf.Variable:
        return tf.Variable(tf.fill(tf.shape(variable), tf.constant(value, self.tf_dtype)),
                           trainable=False)

    def assign_learning_rate(self, lr: float) -> None:
        self.lr.assign(lr)

    def apply(self, grads: list[Any]) -> None:
        self.t.assign_add(1.0)
        # convert_to_tensor densifies IndexedSlices (embedding gradients)
        self.update(self, self.variables,
                    [tf.cast(tf.convert_to_tensor(g), self.tf_dtype) for g in grads])


def sgd(opt: Any, params: Variables, grads: Tensors) -> None:
    for var, g in zip(params, grads):
        var.assign_sub(opt.lr * g)


def momentum(opt: Any, params: Variables, grads: Tensors, nesterov: bool = False) -> None:
    mu = opt.hp["momentum"]
    for var, g, v in zip(params, grads, opt.state["v"]):
        v.assign(mu * v + opt.lr * g)  # lr inside the velocity (lecture form)
        var.assign_sub(mu * v + opt.lr * g if nesterov else v)


def adagrad(opt: Any, params: Variables, grads: Tensors) -> None:
    for var, g, acc in zip(params, grads, opt.state["G"]):
        acc.assign_add(tf.square(g))
        var.assign_sub(opt.lr * g / tf.sqrt(acc + opt.hp["eps"]))  # eps inside the square root


def rmsprop(opt: Any, params: Variables, grads: Tensors) -> None:
    rho, eps = opt.hp["rho"], opt.hp["eps"]
    for var, g, s in zip(params, grads, opt.state["s"]):
        s.assign(rho * s + (1.0 - rho) * tf.square(g))
        var.assign_sub(opt.lr * g / tf.sqrt(s + eps))  # eps inside the square root


def adam(opt: Any, params: Variables, grads: Tensors, decay: float = 0.0) -> None:
    b1, b2, eps, lr = opt.hp["beta1"], opt.hp["beta2"], opt.hp["eps"], opt.lr
    t = opt.t.read_value()
    correction1 = 1.0 - tf.pow(tf.constant(b1, opt.tf_dtype), t)
    correction2 = 1.0 - tf.pow(tf.constant(b2, opt.tf_dtype), t)
    for var, g, m, v in zip(params, grads, opt.state["m"], opt.state["v"]):
        if decay:
            var.assign_sub(lr * decay * var)  # decoupled decay first, scaled by lr
        m.assign(b1 * m + (1.0 - b1) * g)
        v.assign(b2 * v + (1.0 - b2) * tf.square(g))
        # Algorithm 1 of the paper: eps added to sqrt of the bias-corrected v (not epsilon-hat).
        var.assign_sub(lr * (m / correction1) / (tf.sqrt(v / correction2) + eps))


UPDATES = {
    "gd": sgd, "sgd": sgd, "momentum": momentum,
    "nesterov": lambda opt, params, grads: momentum(opt, params, grads, nesterov=True),
    "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam,
    "adamw": lambda opt, params, grads: adam(opt, params, grads, opt.hp["weight_decay"]),
}
