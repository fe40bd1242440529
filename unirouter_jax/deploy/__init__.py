"""The deployable router: state, its cluster map (K-means, soft k-means or
a learned map, cluster_map.py), fit (fitting.py, fit_dataset.py), add/remove
an LLM, route (rule.py), calibrate a cost weight (on held-out prompts kept
from fit, heldout.py), its deferral curve, save/load (orbax), cost tables,
JSON route records, and a portable JSON export with a NumPy-only reader
(export.py, portable.py). Imports ``core``, ``estimators`` (the LearnedMap)
and ``evaluation`` (the K-selection rule of method.md 2.4).
"""
