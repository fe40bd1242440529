"""NumPy + scikit-learn reference of the routing evaluation protocol.

Written from the protocol's specification alone, without reading or importing
``unirouter_jax``, so that it can cross-check the JAX implementation. Clarity
beats speed here: plain loops, float64 throughout, no JIT.

Conventions
-----------
Data:
  * ``quality_nm`` [n, m]: label of LLM m on prompt n, in [0, 1]; NaN where
    the label is missing. Error means ``1 - quality``.
  * ``cost_nm`` [n, m]: realised cost of LLM m on prompt n (>= 0, finite).
  * ``emb_nd`` [n, d]: prompt embeddings.

A trial is a dict of 1-D integer index arrays: ``test_llms`` (LLM indices,
sorted ascending here whatever order they come in), ``train``, ``val`` and
``test`` (prompt indices, order kept: the K-NN tie rule depends on the order
of ``val``). ``train_llms`` (default: every LLM not in ``test_llms``) is
accepted and checked, but no method here reads it: K-means is fitted on the
training prompts' embeddings, and every error estimate comes from the test
LLMs' validation labels.

Protocol (one trial):
  1. Evaluation prompts E: the test prompts labelled for every test LLM.
  2. Rule cost ``c_rule[h]``: mean cost of h over all validation prompts.
  3. Validation error ``err_val[h]``: mean error of h over the validation
     prompts labelled for h; 0.5 when there are none.
  4. Lambda grid: ``[0] + geomspace(1e-4, 1e4, 199)``, divided by the span of
     the test LLMs' rule costs (when that span is positive).
  5. Plug-in routing: for each lambda, prompt e goes to the test LLM
     minimising ``gamma[e, h] + lambda * c_rule[h]`` (ties: lowest LLM index);
     the point is (mean realised cost, mean quality) over E.
  6. ``gamma`` per method: ``uniroute_kmeans`` (cluster errors on the
     validation prompts), ``knn`` (errors of the k nearest validation
     prompts), ``oracle`` (true test errors). ``zero_router`` skips the sweep:
     its points are the test points of the LLMs on the lower convex hull of
     (rule cost, validation error), from the cheapest to the most accurate.
  7. Cost axis: ``x = (cost - c_min) / (c_max - c_min)``, where ``c_min`` and
     ``c_max`` are the smallest and largest mean cost on E of a test LLM (all
     x are 0 when they are equal). Each method's points get the cheapest test
     LLM's point added, and the curve is their upper concave envelope, flat
     right of its leftmost highest point.
  8. Metrics: exact areas over [0, 1] and [0, 0.5], the peak, QNC (relative
     cost at which the curve first reaches the best test LLM's quality, less
     1e-6) and the curve on ``linspace(0, 1, 101)``.

Curves are represented by their vertices (``knots_x``, ``knots_y``), x
strictly increasing and y strictly increasing (concave, cut at the peak);
between vertices the curve is linear and right of the last one it is flat.
"""

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans

METHODS = ('zero_router', 'knn', 'uniroute_kmeans', 'oracle')
NUM_LAMBDAS = 200
QNC_TOLERANCE = 1e-6
GRID = np.linspace(0.0, 1.0, 101)
NO_LABEL_ERROR = 0.5


# ---------------------------------------------------------------------------
# Trials and splits.


def _index_array(values, name: str) -> np.ndarray:
  arr = np.asarray(values)
  if arr.ndim != 1:
    raise ValueError(f'{name} must be 1-D, got shape {arr.shape}')
  if arr.size and not np.issubdtype(arr.dtype, np.integer):
    raise ValueError(f'{name} must hold integers, got {arr.dtype}')
  return arr.astype(np.int64)


def trial_indices(trial: Mapping, num_prompts: int, num_llms: int) -> dict:
  """Checks a trial and returns its index arrays (``test_llms`` sorted)."""
  out = {}
  test_llms = _index_array(trial['test_llms'], 'test_llms')
  if test_llms.size == 0:
    raise ValueError('test_llms is empty')
  if np.unique(test_llms).size != test_llms.size:
    raise ValueError(f'test_llms has duplicates: {test_llms.tolist()}')
  out['test_llms'] = np.sort(test_llms)
  if trial.get('train_llms') is None:
    out['train_llms'] = np.setdiff1d(np.arange(num_llms), out['test_llms'])
  else:
    out['train_llms'] = _index_array(trial['train_llms'], 'train_llms')
    if np.intersect1d(out['train_llms'], out['test_llms']).size:
      raise ValueError('train_llms and test_llms overlap')
  for key in ('test_llms', 'train_llms'):
    if out[key].size and (out[key].min() < 0 or out[key].max() >= num_llms):
      raise ValueError(f'{key} out of range [0, {num_llms})')
  for key in ('train', 'val', 'test'):
    idx = _index_array(trial[key], key)
    if idx.size and (idx.min() < 0 or idx.max() >= num_prompts):
      raise ValueError(f'{key} out of range [0, {num_prompts})')
    out[key] = idx
  if out['val'].size == 0:
    raise ValueError('val is empty')
  return out


def read_splits(
    path, prompt_ids: Sequence, llm_names: Sequence[str]
) -> list[dict]:
  """Reads trials from a JSON list of ``{test_llms, train, val, test}``.

  Prompt ids are matched against ``prompt_ids`` and LLM names against
  ``llm_names``, both compared as strings. An optional ``train_llms`` list of
  names is read too. Order within each list is kept, except ``test_llms``,
  which is sorted by LLM index.

  Raises:
    ValueError: the file is not a list of such objects, ``prompt_ids`` or
      ``llm_names`` has duplicates, or a trial names an unknown prompt id or
      LLM (the message gives the trial's index and the id).
  """
  with open(path) as f:
    raw = json.load(f)
  if not isinstance(raw, list):
    raise ValueError(f'{path}: expected a JSON list of trials')
  prompt_index = _string_index(prompt_ids, 'prompt id')
  llm_index = _string_index(llm_names, 'LLM name')
  trials = []
  for t, entry in enumerate(raw):
    if not isinstance(entry, dict):
      raise ValueError(f'trial {t}: expected an object, got {type(entry)}')
    for key in ('test_llms', 'train', 'val', 'test'):
      if key not in entry:
        raise ValueError(f'trial {t}: missing key {key!r}')
    trial = {
        'test_llms': np.sort(
            _look_up(entry['test_llms'], llm_index, t, 'LLM name')
        )
    }
    for key in ('train', 'val', 'test'):
      trial[key] = _look_up(entry[key], prompt_index, t, 'prompt id')
    if entry.get('train_llms') is not None:
      trial['train_llms'] = _look_up(
          entry['train_llms'], llm_index, t, 'LLM name'
      )
    trials.append(trial)
  return trials


def _string_index(names: Sequence, what: str) -> dict[str, int]:
  index = {}
  for i, name in enumerate(names):
    key = str(name)
    if key in index:
      raise ValueError(f'duplicate {what} {key!r}')
    index[key] = i
  return index


def _look_up(values, index: dict[str, int], t: int, what: str) -> np.ndarray:
  if not isinstance(values, list):
    raise ValueError(f'trial {t}: expected a list of {what}s')
  out = []
  for value in values:
    key = str(value)
    if key not in index:
      raise ValueError(f'trial {t}: unknown {what} {key!r}')
    out.append(index[key])
  return np.asarray(out, dtype=np.int64)


# ---------------------------------------------------------------------------
# Validation statistics and the lambda rule.


def eval_prompts(
    quality_nm: np.ndarray, test: np.ndarray, test_llms: np.ndarray
) -> np.ndarray:
  """The test prompts labelled for every test LLM (order of ``test`` kept)."""
  labelled = ~np.isnan(quality_nm[np.ix_(test, test_llms)])
  return test[labelled.all(axis=1)]


def rule_costs(cost_nm: np.ndarray, val: np.ndarray) -> np.ndarray:
  """[m] mean cost of each LLM over all validation prompts."""
  return cost_nm[val].mean(axis=0)


def val_errors(quality_nm: np.ndarray, val: np.ndarray) -> np.ndarray:
  """[m] mean error of each LLM over its labelled validation prompts."""
  q = quality_nm[val]
  out = np.empty(q.shape[1])
  for h in range(q.shape[1]):
    labelled = ~np.isnan(q[:, h])
    if labelled.any():
      out[h] = np.mean(1.0 - q[labelled, h])
    else:
      out[h] = NO_LABEL_ERROR
  return out


def lambda_grid(c_rule_test: np.ndarray) -> np.ndarray:
  """[200] zero then 199 log-spaced values, over the rule-cost span."""
  lam = np.concatenate([[0.0], np.geomspace(1e-4, 1e4, NUM_LAMBDAS - 1)])
  span = float(np.max(c_rule_test) - np.min(c_rule_test))
  if span > 0:
    lam = lam / span
  return lam


def plugin_points(
    gamma: np.ndarray,
    c_rule_test: np.ndarray,
    cost_e: np.ndarray,
    quality_e: np.ndarray,
    lambdas: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
  """Routes by ``argmin gamma + lambda * c_rule`` for each lambda.

  Args:
    gamma: [|E|, m_test] estimated errors, test LLMs in ascending order.
    c_rule_test: [m_test] rule costs of the test LLMs.
    cost_e: [|E|, m_test] realised costs on the evaluation prompts.
    quality_e: [|E|, m_test] labels on the evaluation prompts.
    lambdas: [L] the lambda grid.

  Returns:
    ``(cost_l, quality_l)``: the mean realised cost and quality over E of
    each lambda's routing.
  """
  rows = np.arange(gamma.shape[0])
  costs = np.empty(len(lambdas))
  qualities = np.empty(len(lambdas))
  for j, lam in enumerate(lambdas):
    choice = np.argmin(gamma + lam * c_rule_test[None, :], axis=1)
    costs[j] = np.mean(cost_e[rows, choice])
    qualities[j] = np.mean(quality_e[rows, choice])
  return costs, qualities


# ---------------------------------------------------------------------------
# Error estimates (gamma) per method.


def squared_distances(a_nd: np.ndarray, b_md: np.ndarray) -> np.ndarray:
  """[n, m] squared Euclidean distances from summed squared differences.

  scipy's ``cdist`` sums ``(a - b)**2`` over each pair (no dot-product
  expansion), so equal vectors give bit-identical distances and the tie rules
  below act on true ties. Squared distances order the same as distances.
  """
  return cdist(a_nd, b_md, metric='sqeuclidean')


def nearest_centroid(emb: np.ndarray, centroids: np.ndarray) -> np.ndarray:
  """Index of the nearest centroid of each row (ties: lowest index)."""
  return np.argmin(squared_distances(emb, centroids), axis=1)


def _mean_errors(q_rh: np.ndarray, fallback_h: np.ndarray) -> np.ndarray:
  """[h] mean of 1 - q over each column's labelled rows, else the fallback."""
  labelled = ~np.isnan(q_rh)
  count = labelled.sum(axis=0)
  total = np.where(labelled, 1.0 - np.nan_to_num(q_rh), 0.0).sum(axis=0)
  return np.where(count > 0, total / np.maximum(count, 1), fallback_h)


def gamma_kmeans(
    emb_nd: np.ndarray,
    quality_nm: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    eval_idx: np.ndarray,
    test_llms: np.ndarray,
    num_clusters: int,
    seed: int = 0,
) -> np.ndarray:
  """[|E|, m_test] UniRoute K-means errors.

  K-means (``n_init=3``, ``random_state=seed``) on the training prompts'
  embeddings; validation and evaluation prompts go to their nearest centroid.
  ``psi[k, h]`` is the mean error of h over cluster k's validation prompts
  labelled for h, or ``err_val[h]`` when there are none.
  """
  km = KMeans(n_clusters=num_clusters, n_init=3, random_state=seed)
  km.fit(emb_nd[train])
  centroids = np.asarray(km.cluster_centers_, dtype=np.float64)
  val_cluster = nearest_centroid(emb_nd[val], centroids)
  eval_cluster = nearest_centroid(emb_nd[eval_idx], centroids)
  err_val = val_errors(quality_nm, val)[test_llms]
  q_val = quality_nm[np.ix_(val, test_llms)]
  psi = np.empty((num_clusters, test_llms.size))
  for c in range(num_clusters):
    psi[c] = _mean_errors(q_val[val_cluster == c], err_val)
  return psi[eval_cluster]


def gamma_knn(
    emb_nd: np.ndarray,
    quality_nm: np.ndarray,
    val: np.ndarray,
    eval_idx: np.ndarray,
    test_llms: np.ndarray,
    k: int,
) -> np.ndarray:
  """[|E|, m_test] K-NN errors over the k nearest validation prompts.

  Neighbours by Euclidean distance, ties to the earlier position in ``val``
  (stable sort). Unlabelled neighbours are skipped; with no labelled
  neighbour for h, ``err_val[h]``.
  """
  if not 1 <= k <= val.size:
    raise ValueError(f'knn needs 1 <= k <= |val| = {val.size}, got {k}')
  dist = squared_distances(emb_nd[eval_idx], emb_nd[val])
  neighbours = np.argsort(dist, axis=1, kind='stable')[:, :k]
  err_val = val_errors(quality_nm, val)[test_llms]
  q_val = quality_nm[np.ix_(val, test_llms)]
  gamma = np.empty((eval_idx.size, test_llms.size))
  for i in range(eval_idx.size):
    gamma[i] = _mean_errors(q_val[neighbours[i]], err_val)
  return gamma


def zero_router_hull(costs: np.ndarray, errors: np.ndarray) -> np.ndarray:
  """Positions of the lower-convex-hull LLMs, cheapest to most accurate.

  Lower hull of the points (cost, error) by Andrew's monotone chain, from the
  cheapest point (lowest error among equal costs, then lowest position) to
  the most accurate (cheapest among equal errors, then lowest position).
  Exact duplicates keep the lowest position; collinear points are dropped.
  """
  costs = np.asarray(costs, dtype=np.float64)
  errors = np.asarray(errors, dtype=np.float64)
  positions = np.arange(costs.size)
  order = np.lexsort((positions, errors, costs))
  unique = []
  for i in order:
    j = unique[-1] if unique else None
    if j is not None and costs[i] == costs[j] and errors[i] == errors[j]:
      continue  # An exact duplicate of a lower position.
    unique.append(int(i))
  hull = []
  for i in unique:
    while len(hull) >= 2 and (
        _cross(
            (costs[hull[-2]], errors[hull[-2]]),
            (costs[hull[-1]], errors[hull[-1]]),
            (costs[i], errors[i]),
        )
        <= 0
    ):
      hull.pop()  # Not a strict left turn: on or above the chord.
    hull.append(i)
  best = int(np.lexsort((positions, costs, errors))[0])
  return np.asarray(hull[: hull.index(best) + 1], dtype=np.int64)


def _cross(o, a, b) -> float:
  """z of (a - o) x (b - o): > 0 for a left (counter-clockwise) turn."""
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


# ---------------------------------------------------------------------------
# Curves and their metrics.


def upper_envelope(x, y) -> tuple[np.ndarray, np.ndarray]:
  """Vertices of the upper concave envelope, cut at its leftmost peak.

  Andrew's monotone chain over the points sorted by x (of equal x only the
  highest counts); points on or below a chord are not vertices. The result
  is the chain up to its leftmost highest vertex: the curve is flat to the
  right of it.

  Returns:
    ``(knots_x, knots_y)``, both strictly increasing.
  """
  x = np.asarray(x, dtype=np.float64).ravel()
  y = np.asarray(y, dtype=np.float64).ravel()
  if x.size == 0 or x.shape != y.shape:
    raise ValueError(f'need equal, non-empty x and y: {x.shape}, {y.shape}')
  if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
    raise ValueError('x and y must be finite')
  chain = []
  for i in np.lexsort((-y, x)):  # x ascending, y descending.
    p = (x[i], y[i])
    if chain and p[0] == chain[-1][0]:
      continue  # Same x, not higher.
    while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) >= 0:
      chain.pop()  # chain[-1] on or below the chord to p.
    chain.append(p)
  knots_x = np.array([p[0] for p in chain])
  knots_y = np.array([p[1] for p in chain])
  top = int(np.argmax(knots_y))  # Leftmost highest.
  return knots_x[: top + 1], knots_y[: top + 1]


def envelope_at(knots_x, knots_y, x) -> np.ndarray:
  """The curve at x: linear between vertices, flat right of the last one.

  Left of the first vertex np.interp holds the first value; callers only ask
  there when that is intended (see ``curve_metrics``).
  """
  return np.interp(x, knots_x, knots_y)


def _integral(knots_x, knots_y, lo: float, hi: float) -> float:
  """Exact integral of the curve over [lo, hi] (lo >= knots_x[0])."""
  inside = knots_x[(knots_x > lo) & (knots_x < hi)]
  xs = np.concatenate([[lo], inside, [hi]])
  ys = envelope_at(knots_x, knots_y, xs)
  return float(np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs)))


def _first_reach(knots_x, knots_y, target: float) -> float | None:
  """Smallest x at which the curve is >= target (None if never)."""
  if knots_y[0] >= target:
    return float(knots_x[0])
  for i in range(1, knots_x.size):
    if knots_y[i] >= target:
      x0, x1 = knots_x[i - 1], knots_x[i]
      y0, y1 = knots_y[i - 1], knots_y[i]
      return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))
  return None


def curve_metrics(
    knots_x,
    knots_y,
    *,
    c_min: float,
    c_max: float,
    best_cost: float,
    best_quality: float,
) -> dict:
  """Area, Area(50%), peak, QNC and the curve on the 101-point grid.

  Args:
    knots_x: vertices' normalised costs; the first must be <= 0.
    knots_y: vertices' qualities.
    c_min: smallest mean cost on E of a test LLM (x = 0).
    c_max: largest one (x = 1).
    best_cost: mean cost on E of the best test LLM.
    best_quality: its mean quality on E.

  Returns:
    ``area`` (integral over [0, 1]), ``area50`` (over [0, 0.5], not
    rescaled), ``peak``, ``qnc`` (raw cost where the curve first reaches
    ``best_quality - 1e-6``, over ``best_cost``; 1.0 if ``best_cost`` is 0;
    inf if never reached) and ``quality_g`` (the curve on
    ``linspace(0, 1, 101)``).
  """
  knots_x = np.asarray(knots_x, dtype=np.float64)
  knots_y = np.asarray(knots_y, dtype=np.float64)
  if knots_x[0] > 0:
    raise ValueError(f'curve starts right of x = 0: {knots_x[0]}')
  x_reach = _first_reach(knots_x, knots_y, best_quality - QNC_TOLERANCE)
  if x_reach is None:
    qnc = math.inf
  elif best_cost == 0:
    qnc = 1.0
  else:
    qnc = (c_min + x_reach * (c_max - c_min)) / best_cost
  return {
      'area': _integral(knots_x, knots_y, 0.0, 1.0),
      'area50': _integral(knots_x, knots_y, 0.0, 0.5),
      'peak': float(np.max(knots_y)),
      'qnc': float(qnc),
      'quality_g': envelope_at(knots_x, knots_y, GRID),
  }


def cheapest_llm(llm_cost: np.ndarray, llm_quality: np.ndarray) -> int:
  """Position of the cheapest LLM (highest quality, then lowest position)."""
  positions = np.arange(llm_cost.size)
  return int(np.lexsort((positions, -llm_quality, llm_cost))[0])


def best_llm(llm_cost: np.ndarray, llm_quality: np.ndarray) -> int:
  """Position of the best LLM (cheaper, then lower position, among ties)."""
  positions = np.arange(llm_cost.size)
  return int(np.lexsort((positions, llm_cost, -llm_quality))[0])


def curve_from_points(point_cost, point_quality, llm_cost, llm_quality) -> dict:
  """Normalises a method's points, adds the cheapest LLM, builds the curve.

  Args:
    point_cost: [p] the method's mean realised costs (raw units).
    point_quality: [p] its mean qualities.
    llm_cost: [m_test] mean cost on E of each test LLM.
    llm_quality: [m_test] mean quality on E of each test LLM.

  Returns:
    The metrics of ``curve_metrics`` and ``knots_x``, ``knots_y``, ``c_min``,
    ``c_max``, ``best_cost``, ``best_quality``.
  """
  point_cost = np.asarray(point_cost, dtype=np.float64)
  point_quality = np.asarray(point_quality, dtype=np.float64)
  llm_cost = np.asarray(llm_cost, dtype=np.float64)
  llm_quality = np.asarray(llm_quality, dtype=np.float64)
  c_min, c_max = float(np.min(llm_cost)), float(np.max(llm_cost))
  if c_max > c_min:
    x = (point_cost - c_min) / (c_max - c_min)
  else:
    x = np.zeros_like(point_cost)
  cheap = cheapest_llm(llm_cost, llm_quality)
  x = np.concatenate([x, [0.0]])
  y = np.concatenate([point_quality, [llm_quality[cheap]]])
  knots_x, knots_y = upper_envelope(x, y)
  best = best_llm(llm_cost, llm_quality)
  out = {
      'knots_x': knots_x,
      'knots_y': knots_y,
      'c_min': c_min,
      'c_max': c_max,
      'best_cost': float(llm_cost[best]),
      'best_quality': float(llm_quality[best]),
  }
  out.update(
      curve_metrics(
          knots_x,
          knots_y,
          c_min=c_min,
          c_max=c_max,
          best_cost=out['best_cost'],
          best_quality=out['best_quality'],
      )
  )
  return out


# ---------------------------------------------------------------------------
# Trials end to end.


def evaluate_trial(
    emb_nd,
    quality_nm,
    cost_nm,
    trial: Mapping,
    method: str,
    *,
    k: int | None = None,
    seed: int = 0,
) -> dict:
  """Runs one method on one trial.

  Args:
    emb_nd: [n, d] prompt embeddings.
    quality_nm: [n, m] labels in [0, 1], NaN where missing.
    cost_nm: [n, m] realised costs.
    trial: dict of index arrays (see the module docstring).
    method: one of ``METHODS``.
    k: K for ``uniroute_kmeans``, k for ``knn``; ignored otherwise.
    seed: K-means ``random_state``.

  Returns:
    ``area``, ``area50``, ``qnc``, ``peak``, ``quality_g`` [101],
    ``num_eval`` (|E|), ``best_quality``, ``best_cost``, ``c_min``,
    ``c_max``, ``knots_x``, ``knots_y`` (normalised x), and the method's own
    points before the cheapest LLM's is added: ``point_cost`` (raw units) and
    ``point_quality``. ``zero_router`` adds ``hull_llms`` (LLM indices).

  Raises:
    ValueError: unknown method, missing k, empty E or val, bad indices.
  """
  if method not in METHODS:
    raise ValueError(f'unknown method {method!r}; expected one of {METHODS}')
  if method in ('knn', 'uniroute_kmeans') and k is None:
    raise ValueError(f'{method} needs k')
  emb_nd = np.asarray(emb_nd, dtype=np.float64)
  quality_nm = np.asarray(quality_nm, dtype=np.float64)
  cost_nm = np.asarray(cost_nm, dtype=np.float64)
  n, m = quality_nm.shape
  if cost_nm.shape != (n, m) or emb_nd.ndim != 2 or emb_nd.shape[0] != n:
    raise ValueError(
        f'shapes disagree: emb {emb_nd.shape}, quality {quality_nm.shape}, '
        f'cost {cost_nm.shape}'
    )
  idx = trial_indices(trial, n, m)
  test_llms, val = idx['test_llms'], idx['val']
  e = eval_prompts(quality_nm, idx['test'], test_llms)
  if e.size == 0:
    raise ValueError('no test prompt is labelled for every test LLM')
  c_rule = rule_costs(cost_nm, val)[test_llms]
  err_val = val_errors(quality_nm, val)[test_llms]
  cost_e = cost_nm[np.ix_(e, test_llms)]
  quality_e = quality_nm[np.ix_(e, test_llms)]
  llm_cost, llm_quality = cost_e.mean(axis=0), quality_e.mean(axis=0)
  extra = {}
  if method == 'zero_router':
    hull = zero_router_hull(c_rule, err_val)
    point_cost, point_quality = llm_cost[hull], llm_quality[hull]
    extra['hull_llms'] = test_llms[hull]
  else:
    if method == 'oracle':
      gamma = 1.0 - quality_e
    elif method == 'knn':
      gamma = gamma_knn(emb_nd, quality_nm, val, e, test_llms, int(k))
    else:
      gamma = gamma_kmeans(
          emb_nd, quality_nm, idx['train'], val, e, test_llms, int(k), seed
      )
    point_cost, point_quality = plugin_points(
        gamma, c_rule, cost_e, quality_e, lambda_grid(c_rule)
    )
  out = curve_from_points(point_cost, point_quality, llm_cost, llm_quality)
  out.update(
      num_eval=int(e.size),
      point_cost=point_cost,
      point_quality=point_quality,
      **extra,
  )
  return out


def evaluate(
    emb_nd,
    quality_nm,
    cost_nm,
    trials: Sequence[Mapping],
    methods: Mapping[str, tuple[str, int | None]],
    seed: int = 0,
) -> dict[str, list[dict]]:
  """Every method on every trial: ``{name: [per-trial dict, ...]}``.

  ``methods`` maps a name to ``(method, k)``. The same ``seed`` is used for
  K-means in every trial.
  """
  return {
      name: [
          evaluate_trial(
              emb_nd, quality_nm, cost_nm, trial, method, k=k, seed=seed
          )
          for trial in trials
      ]
      for name, (method, k) in methods.items()
  }


# ---------------------------------------------------------------------------
# Aggregation.


def mean_curve_qnc(trials: Sequence[Mapping]) -> float:
  """QNC of the mean curve on a relative-cost axis.

  Trial s's curve, as a function of ``u = raw cost / best_cost_s``, is
  ``f_s(u)`` = the curve for u >= its leftmost vertex and, left of it, the
  leftmost vertex's quality capped at the trial's own target
  ``best_quality_s - 1e-6`` (a trial cannot beat its target below the
  cheapest cost it reaches).
  ``F = mean_s f_s`` is non-decreasing and piecewise linear between the
  trials' vertices (right-continuous jumps at each leftmost vertex). Returns
  the smallest u with ``F(u) >= mean_s best_quality_s - 1e-6``, found by an
  exact search over the breakpoints, or inf when F never gets there.

  Args:
    trials: per-trial dicts with ``knots_x``, ``knots_y``, ``c_min``,
      ``c_max``, ``best_cost`` and ``best_quality`` (``evaluate_trial``).

  Raises:
    ValueError: no trials, or a trial's best LLM costs 0.
  """
  if not trials:
    raise ValueError('no trials')
  curves = []
  for s, t in enumerate(trials):
    if t['best_cost'] <= 0:
      raise ValueError(f'trial {s}: best_cost must be > 0 for relative cost')
    raw = t['c_min'] + np.asarray(t['knots_x']) * (t['c_max'] - t['c_min'])
    knots_y = np.asarray(t['knots_y'])
    cap = min(float(knots_y[0]), t['best_quality'] - QNC_TOLERANCE)
    curves.append((raw / t['best_cost'], knots_y, cap))
  target = float(np.mean([t['best_quality'] for t in trials])) - QNC_TOLERANCE

  def mean_curve(u: float, left_limit: bool = False) -> float:
    """F(u), or its limit from the left (trials starting at u excluded)."""
    total = 0.0
    for knots_u, knots_y, cap in curves:
      started = knots_u[0] < u if left_limit else knots_u[0] <= u
      total += float(envelope_at(knots_u, knots_y, u)) if started else cap
    return total / len(curves)

  breaks = np.unique(np.concatenate([u for u, _, _ in curves]))
  for j, b in enumerate(breaks):
    if mean_curve(b) < target:
      continue
    if j == 0:
      return float(b)
    lo = breaks[j - 1]
    f_lo, f_hi = mean_curve(lo), mean_curve(b, left_limit=True)
    if f_hi < target:
      return float(b)  # Reached by a jump at b.
    return float(lo + (target - f_lo) / (f_hi - f_lo) * (b - lo))
  return math.inf


def sign_test(a, b, *, higher_is_better: bool = True) -> tuple:
  """Exact two-sided binomial sign test of paired values, ties dropped.

  A win is a pair where ``a`` is better: ``a > b`` (``a < b`` with
  ``higher_is_better=False``, e.g. for QNC). Equal values (inf == inf
  included) are ties.

  Returns:
    ``(wins, losses, ties, p)`` with ``p = min(1, 2 P[X <= min(wins,
    losses)])``, X ~ Binomial(wins + losses, 1/2); p = 1 with no untied pair.
  """
  a = np.asarray(a, dtype=np.float64).ravel()
  b = np.asarray(b, dtype=np.float64).ravel()
  if a.shape != b.shape:
    raise ValueError(f'unpaired: {a.shape} vs {b.shape}')
  if np.isnan(a).any() or np.isnan(b).any():
    raise ValueError('NaN in sign test input')
  wins, losses = int(np.sum(a > b)), int(np.sum(a < b))
  if not higher_is_better:
    wins, losses = losses, wins
  ties = a.size - wins - losses
  n = wins + losses
  if n == 0:
    return wins, losses, ties, 1.0
  tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
  return wins, losses, ties, min(1.0, 2 * tail / 2**n)
