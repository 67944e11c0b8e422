"""Layer 2, the contracts plugins implement: backends (``backend``) and tasks (``task``), and the
epoch loop that drives every backend the same way (``loop``).
"""
