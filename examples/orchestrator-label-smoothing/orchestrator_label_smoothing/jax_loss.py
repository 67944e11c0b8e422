"""label_smoothing for the jax backend (examples/orchestrator-jax), when it is installed."""

import jax
import jax.numpy as jnp


def build(spec):
    s, from_logits = spec["smoothing"], spec["from_logits"]

    def fn(y, y_pred):
        log_p = (jax.nn.log_softmax(y_pred, axis=-1) if from_logits
                 else jnp.log(jnp.clip(y_pred, 1e-7, 1 - 1e-7)))
        smoothed = (1 - s) * y + s / y.shape[-1]
        return -jnp.mean(jnp.sum(smoothed * log_p, axis=-1))
    return fn
