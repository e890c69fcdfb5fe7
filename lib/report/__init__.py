"""Reporting: the claim records, the papers' numbers, the figures, the notebooks' shared helpers."""
