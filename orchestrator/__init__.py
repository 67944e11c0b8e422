"""Run, tune and compare deep-learning experiments across frameworks.

One canonical meaning per component and hyperparameter (``orchestrator.canonical.catalogue``), backends as
pluggy plugins (``orchestrator.plugins.hookspecs``), a conformance kit for them (``orchestrator.testing``).
Importing this package imports no framework.
"""

from orchestrator.plugins.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
