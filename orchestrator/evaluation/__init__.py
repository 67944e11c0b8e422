"""Metrics and plots computed from predictions in NumPy and matplotlib: the same code for every
backend, used by tasks, runs and reports.
"""
