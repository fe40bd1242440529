"""Routers as :class:`~unirouter_jax.estimators.base.Estimator` s (pure
functions over a trial's visible labels): the interface, the built-ins, the
baselines, LearnedMap and the clairvoyant oracles. Imports ``core`` only.
"""
