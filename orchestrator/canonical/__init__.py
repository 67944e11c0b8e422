"""Layer 1, the canonical math: what every component and hyperparameter means, on any backend.

``catalogue`` (names, formulas, defaults, validation), ``specs`` (declarative networks and the
canonical weight names and layouts), ``initializers`` (initial weights drawn once in NumPy),
``networks`` (the lecture's networks as specs) and ``reference`` (the float64 NumPy oracle).
Imports NumPy only: no framework, no MLflow, no Optuna.
"""
