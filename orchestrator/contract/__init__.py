"""Layer 2, the contracts plugins implement: backends (``backend``: ``Backend`` and ``Resources``;
``model``: ``BackendModel``; ``session``: ``TrainingSession``; ``optimizer``: ``Optimizer``),
tasks (``task``), and the epoch loop that drives every backend the same way (``loop``).

The backend classes are concrete: they own the bookkeeping (checks, loops, means) and call a few
framework primitives a backend implements; ``backend``'s docstring is the manual.
"""
