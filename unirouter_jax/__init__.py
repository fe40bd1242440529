"""unirouter_jax: universal model routing (UniRoute) in JAX.

Route each prompt to the cheapest LLM that will answer it well, including LLMs
never seen in training: each LLM is represented by its errors on a small
labelled probe set, clustered by prompt (Jitkrittum et al., arXiv 2502.08773).

Subpackages imported on demand: ``unirouter_jax.data`` (loaders and bundled
data), ``unirouter_jax.encoder`` (the MiniLM prompt encoder),
``unirouter_jax.checkpointing`` (orbax).
"""

from unirouter_jax.baselines import knn_gamma, oracle_gamma, zero_router_points
from unirouter_jax.estimator import (
    Estimator,
    EvalSet,
    TrialInputs,
    TwoStageFit,
    single_point,
)
from unirouter_jax.features import llm_features, shrunk_psi
from unirouter_jax.kmeans import (
    assign,
    kmeans_plusplus,
    lloyd,
    one_hot_assign,
    responsibilities,
    soft_kmeans,
)
from unirouter_jax.methods import builtin_estimators
from unirouter_jax.metrics import curve_metrics, deferral_points, upper_envelope
from unirouter_jax.protocol import (
    ProtocolConfig,
    TrialResult,
    make_splits,
    run_protocol,
)
from unirouter_jax.routing import lambda_grid, route, route_grid, uniroute_gamma
from unirouter_jax.structs import (
    Clustering,
    CurveMetrics,
    LLMFeatures,
    RoutingData,
    RoutingResult,
    Split,
)
from unirouter_jax.summary import summarise
from unirouter_jax.sweep import (
    prepare_sweep,
    run_sweep,
    trial_mesh,
    tuned_config,
)

__version__ = '0.1.0'

__all__ = (
    'Clustering',
    'CurveMetrics',
    'Estimator',
    'EvalSet',
    'LLMFeatures',
    'ProtocolConfig',
    'RoutingData',
    'RoutingResult',
    'Split',
    'TrialInputs',
    'TrialResult',
    'TwoStageFit',
    'assign',
    'builtin_estimators',
    'curve_metrics',
    'deferral_points',
    'kmeans_plusplus',
    'knn_gamma',
    'lambda_grid',
    'llm_features',
    'lloyd',
    'make_splits',
    'one_hot_assign',
    'prepare_sweep',
    'oracle_gamma',
    'responsibilities',
    'route',
    'route_grid',
    'run_protocol',
    'run_sweep',
    'shrunk_psi',
    'single_point',
    'soft_kmeans',
    'summarise',
    'trial_mesh',
    'tuned_config',
    'uniroute_gamma',
    'upper_envelope',
    'zero_router_points',
)
