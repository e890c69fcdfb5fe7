"""Measurement with no model code: pairwise accuracy and its relatives, intervals and verdicts."""
