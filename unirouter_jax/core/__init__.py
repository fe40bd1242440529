"""The math of UniRoute: pure JAX functions on pytrees (imports jax and numpy).

* :mod:`~unirouter_jax.core.structs`: the data model and the axis glossary;
* :mod:`~unirouter_jax.core.kmeans`: (soft) k-means, padded to ``k_max``;
* :mod:`~unirouter_jax.core.psi`: per-cluster error tables and fall-backs;
* :mod:`~unirouter_jax.core.routing`: the plug-in rule and the lambda grid;
* :mod:`~unirouter_jax.core.curves`: the cost axis and rule -> points ->
  envelope -> Area / Area(50%) / QNC (the one place that knows the cost axis);
* :mod:`~unirouter_jax.core.probe`: beliefs about a new LLM's errors and the
  split of a label budget over clusters (onboarding);
* :mod:`~unirouter_jax.core.regret`: the routing regret of ``psi``
  uncertainty and its expected fall with more labels (the stopping
  estimate, the active strategy's index).
"""
