"""Adds the loss ``label_smoothing`` to the catalogue, and to the torch, tensorflow and jax
backends (entry module: import-light, NumPy at most).

    y_s = (1 - s) * y + s / K          (K classes, y one-hot)
    loss = -sum_k y_s[k] * log p[k]    (mean over samples and time steps)

``orchestrator_add_components`` defines it once (meaning, hyperparameters, target kind and the
NumPy reference the conformance kit checks every backend against) and names one table entry per
backend; each is imported only when its backend is loaded.
"""

from orchestrator import catalogue, hookimpl

from orchestrator_label_smoothing.reference import label_smoothing

PLUGIN_API_VERSION = "1"

DEFINITION = catalogue.ComponentDef(
    "loss", "label_smoothing", "categorical cross entropy against label-smoothed targets "
    "(Szegedy et al. 2016)",
    "-sum_k ((1 - s) y_k + s / K) log p_k",
    (catalogue.Param("smoothing", 0.1, "probability mass s spread evenly over the K classes",
                     float, lambda v: 0 <= v < 1, "0 <= smoothing < 1"),
     catalogue.Param("from_logits", False, "inputs are logits (log-softmax) rather than "
                     "probabilities (clipped to [1e-7, 1 - 1e-7])", bool)),
    target="one_hot", reference=label_smoothing,
    examples=({"smoothing": 0.0}, {"smoothing": 0.4}))


@hookimpl
def orchestrator_add_components(registry):
    registry.add_component(DEFINITION)
    for backend in ("torch", "tensorflow", "jax"):  # a backend not installed is skipped
        registry.add_implementation(backend, "loss", "label_smoothing",
                                    f"orchestrator_label_smoothing.{backend}_loss:build")
