"""unirouter_jax: universal model routing (UniRoute) in JAX.

Route each prompt to the cheapest LLM that will answer it well, including LLMs
never seen in training: each LLM is represented by its errors on a small
labelled probe set, clustered by prompt (Jitkrittum et al., arXiv 2502.08773).

The package has four wings and a shell (``docs/architecture.md``):

* ``unirouter_jax.core``: the math (k-means, psi, the plug-in rule, the cost
  axis and deferral curves), pure JAX;
* ``unirouter_jax.estimators``: routers as ``Estimator`` s;
* ``unirouter_jax.evaluation``: the held-out-LLM protocol and statistics;
* ``unirouter_jax.deploy``: the deployable ``Router`` (fit, add an LLM,
  route, calibrate, save/load);
* ``unirouter_jax.shell``: the ``unirouter`` command, work directories,
  reports, plots.

Subpackages imported on demand: ``unirouter_jax.data`` (loaders and bundled
data), ``unirouter_jax.encoder`` (the MiniLM prompt encoder),
``unirouter_jax.deploy.io`` / ``checkpointing`` (orbax).
"""

import importlib

# Public names -> (module, attribute), imported on first use (PEP 562), so
# that `import unirouter_jax` (and the `unirouter` command's start-up)
# does not import JAX until something needs it.
_EXPORTS = {
    'curve_metrics': ('unirouter_jax.core.curves', 'curve_metrics'),
    'deferral_points': ('unirouter_jax.core.curves', 'deferral_points'),
    'upper_envelope': ('unirouter_jax.core.curves', 'upper_envelope'),
    'assign': ('unirouter_jax.core.kmeans', 'assign'),
    'kmeans_plusplus': ('unirouter_jax.core.kmeans', 'kmeans_plusplus'),
    'lloyd': ('unirouter_jax.core.kmeans', 'lloyd'),
    'one_hot_assign': ('unirouter_jax.core.kmeans', 'one_hot_assign'),
    'responsibilities': ('unirouter_jax.core.kmeans', 'responsibilities'),
    'soft_kmeans': ('unirouter_jax.core.kmeans', 'soft_kmeans'),
    'llm_features': ('unirouter_jax.core.psi', 'llm_features'),
    'shrunk_psi': ('unirouter_jax.core.psi', 'shrunk_psi'),
    'lambda_grid': ('unirouter_jax.core.routing', 'lambda_grid'),
    'plugin_route': ('unirouter_jax.core.routing', 'plugin_route'),
    'route_grid': ('unirouter_jax.core.routing', 'route_grid'),
    'uniroute_gamma': ('unirouter_jax.core.routing', 'uniroute_gamma'),
    'Clustering': ('unirouter_jax.core.structs', 'Clustering'),
    'CurveMetrics': ('unirouter_jax.core.structs', 'CurveMetrics'),
    'EvalSet': ('unirouter_jax.core.structs', 'EvalSet'),
    'LLMFeatures': ('unirouter_jax.core.structs', 'LLMFeatures'),
    'MethodResult': ('unirouter_jax.core.structs', 'MethodResult'),
    'RouteOutput': ('unirouter_jax.core.structs', 'RouteOutput'),
    'Router': ('unirouter_jax.core.structs', 'Router'),
    'RoutingData': ('unirouter_jax.core.structs', 'RoutingData'),
    'Split': ('unirouter_jax.core.structs', 'Split'),
    'TrialInputs': ('unirouter_jax.core.structs', 'TrialInputs'),
    'TrialResult': ('unirouter_jax.core.structs', 'TrialResult'),
    'calibrate': ('unirouter_jax.deploy.calibration', 'calibrate_lambda'),
    'route_budget': ('unirouter_jax.deploy.calibration', 'route_budget'),
    'add_llm': ('unirouter_jax.deploy.router', 'add_llm'),
    'add_labels': ('unirouter_jax.deploy.router', 'add_labels'),
    'remove_llm': ('unirouter_jax.deploy.router', 'remove_llm'),
    'route': ('unirouter_jax.deploy.router', 'route'),
    'set_cost': ('unirouter_jax.deploy.router', 'set_cost'),
    'fit': ('unirouter_jax.deploy.router', 'fit_router'),
    'Estimator': ('unirouter_jax.estimators.base', 'Estimator'),
    'TwoStageFit': ('unirouter_jax.estimators.base', 'TwoStageFit'),
    'single_point': ('unirouter_jax.estimators.base', 'single_point'),
    'knn_gamma': ('unirouter_jax.estimators.baselines', 'knn_gamma'),
    'oracle_gamma': ('unirouter_jax.estimators.baselines', 'oracle_gamma'),
    'zero_router_points': (
        'unirouter_jax.estimators.baselines',
        'zero_router_points',
    ),
    'builtin_estimators': (
        'unirouter_jax.estimators.builtin',
        'builtin_estimators',
    ),
    'ProtocolConfig': ('unirouter_jax.evaluation.protocol', 'ProtocolConfig'),
    'make_splits': ('unirouter_jax.evaluation.protocol', 'make_splits'),
    'run_protocol': ('unirouter_jax.evaluation.protocol', 'run_protocol'),
    'summarise': ('unirouter_jax.evaluation.summary', 'summarise'),
    'prepare_sweep': ('unirouter_jax.evaluation.sweep', 'prepare_sweep'),
    'run_sweep': ('unirouter_jax.evaluation.sweep', 'run_sweep'),
    'trial_mesh': ('unirouter_jax.evaluation.sweep', 'trial_mesh'),
    'tuned_config': ('unirouter_jax.evaluation.sweep', 'tuned_config'),
}


__version__ = '0.1.0'

__all__ = (
    # The deployable router.
    'Router',
    'RouteOutput',
    'add_labels',
    'add_llm',
    'calibrate',
    'fit',
    'remove_llm',
    'route',
    'route_budget',
    'set_cost',
    # Data model.
    'Clustering',
    'CurveMetrics',
    'EvalSet',
    'LLMFeatures',
    'MethodResult',
    'RoutingData',
    'Split',
    'TrialInputs',
    'TrialResult',
    # Estimators.
    'Estimator',
    'TwoStageFit',
    'builtin_estimators',
    'knn_gamma',
    'oracle_gamma',
    'single_point',
    'zero_router_points',
    # The math.
    'assign',
    'curve_metrics',
    'deferral_points',
    'kmeans_plusplus',
    'lambda_grid',
    'llm_features',
    'lloyd',
    'one_hot_assign',
    'plugin_route',
    'responsibilities',
    'route_grid',
    'shrunk_psi',
    'soft_kmeans',
    'uniroute_gamma',
    'upper_envelope',
    # Evaluation.
    'ProtocolConfig',
    'make_splits',
    'prepare_sweep',
    'run_protocol',
    'run_sweep',
    'summarise',
    'trial_mesh',
    'tuned_config',
)


def __getattr__(name: str):
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  module, attr = _EXPORTS[name]
  value = getattr(importlib.import_module(module), attr)
  globals()[name] = value  # later lookups skip this function
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
