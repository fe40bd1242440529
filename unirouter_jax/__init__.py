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

from unirouter_jax.core.curves import (
    curve_metrics,
    deferral_points,
    upper_envelope,
)
from unirouter_jax.core.kmeans import (
    assign,
    kmeans_plusplus,
    lloyd,
    one_hot_assign,
    responsibilities,
    soft_kmeans,
)
from unirouter_jax.core.psi import llm_features, shrunk_psi
from unirouter_jax.core.routing import (
    lambda_grid,
    plugin_route,
    route_grid,
    uniroute_gamma,
)
from unirouter_jax.core.structs import (
    Clustering,
    CurveMetrics,
    EvalSet,
    LLMFeatures,
    MethodResult,
    RouteOutput,
    Router,
    RoutingData,
    Split,
    TrialInputs,
    TrialResult,
)
from unirouter_jax.deploy.calibration import calibrate_lambda as calibrate
from unirouter_jax.deploy.calibration import route_budget
from unirouter_jax.deploy.router import add_llm, remove_llm, route, set_cost
from unirouter_jax.deploy.router import fit_router as fit
from unirouter_jax.estimators.base import Estimator, TwoStageFit, single_point
from unirouter_jax.estimators.baselines import (
    knn_gamma,
    oracle_gamma,
    zero_router_points,
)
from unirouter_jax.estimators.builtin import builtin_estimators
from unirouter_jax.evaluation.protocol import (
    ProtocolConfig,
    make_splits,
    run_protocol,
)
from unirouter_jax.evaluation.summary import summarise
from unirouter_jax.evaluation.sweep import (
    prepare_sweep,
    run_sweep,
    trial_mesh,
    tuned_config,
)

__version__ = '0.1.0'

__all__ = (
    # The deployable router.
    'Router',
    'RouteOutput',
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
