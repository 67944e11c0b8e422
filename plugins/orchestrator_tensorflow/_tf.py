"""Imports TensorFlow and Keras quietly, with Keras 3 running on its TensorFlow backend."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

# Both variables must be set before the first import of tensorflow / keras to have any effect.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "keras" not in sys.modules:
    # Keras 3 picks its backend once per process; this plugin builds tf.functions around Keras
    # layers, so it needs the TensorFlow one whatever the environment asks for.
    os.environ["KERAS_BACKEND"] = "tensorflow"

# TensorFlow's C++ start-up notes (oneDNN, "log messages before absl::InitializeLog") go to
# file descriptor 2 before any log level applies: hold them back and pass on everything else.
_NOISE = ("All log messages before absl::InitializeLog", "oneDNN custom operations are on")


def _import_quietly() -> None:
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines(keepends=True):
                if not any(noise in line for noise in _NOISE):
                    sys.stderr.write(line)


if "tensorflow" not in sys.modules:
    _import_quietly()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "orchestrator_tensorflow needs Keras on its TensorFlow backend, but keras was already "
        f"imported with backend {keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow or "
        "import the plugin before keras")



def compile_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``tf.function(fn, reduce_retracing=True)`` without the "frequent retracing" warning.

    TensorFlow keys that warning by the Python code object, so every model or session instance
    tracing its own copy of the same method counts as retracing one function. Each instance
    traces once per input signature here; the warning would only be noise.
    """
    compiled = tf.function(fn, reduce_retracing=True)
    compiled._omit_frequent_tracing_warning = True  # private flag; harmless if TF drops it
    return compiled


__all__ = ["compile_function", "keras", "tf"]
