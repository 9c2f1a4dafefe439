"""Exports for platforms that run one grading container per hand-in: Gradescope, PrairieLearn."""
