"""Layer 6, orchestration: the plan of an invocation, the parent process that schedules runs,
the worker that executes one run, the shared training entry point, progress display and
process isolation.
"""
