"""Deliberately broken backends, installable as a real plugin through entry points.

Each is a small subclass of the torch backend that breaks exactly one thing (``backends.py``);
``tests/test_conformance_catches.py`` runs the conformance kit against each and checks that it
fails, on the right tests. To use them elsewhere (``orchestrator parity`` on the SGD-only one)::

    from broken_backends import install
    site = install(tmp_path / "site")   # a .dist-info with the entry point, and this package
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-m", "orchestrator", "parity",
                    "--backends", "torch", "broken_sgd_only"], env=env)

``tests/`` must be on ``sys.path`` when ``install`` runs (pytest puts it there for the project's
tests): it reuses ``install_fake_distribution`` from ``tests/plugin_helpers.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DISTRIBUTION = "orchestrator-broken-backends"
ENTRY_POINT = "broken_backends"

# backend name -> (class in backends.py, what it breaks)
BROKEN: dict[str, tuple[str, str]] = {
    "broken_sgd_only": ("SgdOnlyBackend", "train_step always runs SGD"),
    "broken_lr_outside_velocity": ("LrOutsideVelocityBackend",
                                   "momentum with the learning rate outside the velocity"),
    "broken_unscaled_dropout": ("UnscaledDropoutBackend", "dropout without 1/(1 - rate)"),
    "broken_dropout_rate": ("DropoutRateBackend", "dropout reads the rate as keep probability"),
    "broken_adamw_decay_after": ("AdamWDecayAfterBackend", "AdamW decays after the Adam step"),
    "broken_loose_targets": ("LooseTargetBackend", "targets of the wrong shape accepted"),
    "broken_layer_norm_ignores_eps": ("LayerNormIgnoresEpsBackend", "layer norm ignores eps"),
    "broken_layer_norm_eps_outside": ("LayerNormEpsOutsideBackend",
                                      "layer norm adds eps outside the square root"),
    "broken_float16_gradients": ("HalfGradientBackend",
                                 "float32 training-step gradients pass through float16"),
}


def install(root: Path) -> Path:
    """Install the broken backends into ``root`` as a distribution with an ``orchestrator``
    entry point (put ``root`` on ``sys.path`` / ``PYTHONPATH`` to load them); returns ``root``."""
    from plugin_helpers import install_fake_distribution

    install_fake_distribution(root, DISTRIBUTION, {ENTRY_POINT: "broken_backends.plugin"}, {})
    shutil.copytree(Path(__file__).parent, root / "broken_backends",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root
