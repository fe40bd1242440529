"""Reports of a protocol run: summary.json content, Markdown tables, psi map.

Host-side formatting of :class:`~unirouter_jax.core.structs.TrialResult` s for
``experiments/reproduce.py`` and ``unirouter evaluate`` (see
:mod:`unirouter_jax.shell.workdir` for the run itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax.core import kmeans, psi
from unirouter_jax.core.structs import RoutingData, TrialResult
from unirouter_jax.evaluation import protocol
from unirouter_jax.evaluation import summary as summary_lib

# Table rows: every method the library knows, then the per-prompt Oracle.
ROW_ORDER = (
    'zero_router',
    'knn',
    'uniroute_kmeans',
    'uniroute_soft_kmeans',
    'uniroute_learned_map',
    'uniroute_learned_map_train_psi',
    'uniroute_learned_map_kmeans_k',
    'uniroute_hierarchical',
    'mlp_retrained',
    'matfac_retrained',
    'mlp_oracle',
    'matfac_oracle',
    'oracle',
)
LABELS = {
    'zero_router': 'ZeroRouter',
    'knn': 'K-NN',
    'uniroute_kmeans': 'UniRoute (K-means)',
    'uniroute_soft_kmeans': 'UniRoute (soft K-means)',
    'uniroute_learned_map': 'UniRoute (LearnedMap)',
    'uniroute_learned_map_train_psi': 'UniRoute (LearnedMap, train psi)',
    'uniroute_learned_map_kmeans_k': 'UniRoute (LearnedMap, K-means K)',
    'uniroute_hierarchical': 'UniRoute (K-means, hierarchical psi)',
    'mlp_retrained': 'MLP (retrained on probe set)',
    'matfac_retrained': 'MatFac (retrained on probe set)',
    'mlp_oracle': 'MLP (clairvoyant)',
    'matfac_oracle': 'MatFac (clairvoyant)',
    'oracle': 'Oracle (per prompt)',
}
REFERENCE = summary_lib.REFERENCE  # one reference method and level
ALPHA = summary_lib.ALPHA


def psi_similarity(data: RoutingData, k: int, seed: int = 0):
  """Cosine similarity of the LLMs' ``psi`` columns on all prompts.

  K-means with ``k`` clusters on all prompts; ``psi`` of every LLM from all
  its labels. Returns ``(cos_mm, corr_mm, order_m)``: the cosine similarity
  of the raw ``psi`` columns, that of the columns centred on each LLM's
  mean (its error profile across clusters, free of overall accuracy), and
  the leaf order of a hierarchical clustering of the centred similarity
  (see :func:`similarity_order`: related LLMs end up next to each other).
  """
  n = data.num_prompts
  k = int(min(k, n))
  clustering = kmeans.kmeans(
      jax.random.key(seed), data.emb_nd, jnp.ones((n,)), k, k_max=k
  )
  feats = psi.cluster_features(
      data.emb_nd, clustering, 1.0 - data.quality_nm, data.label_mask_nm
  )
  psi_km = np.asarray(feats.psi_km, np.float64)

  def cos(x_km):
    norm = np.linalg.norm(x_km, axis=0, keepdims=True)
    x = x_km / np.maximum(norm, 1e-12)
    return x.T @ x

  centred = psi_km - psi_km.mean(0, keepdims=True)
  corr = cos(centred)
  return cos(psi_km), corr, similarity_order(corr)


ORDER_NOTE = (
    'LLMs ordered by average-linkage clustering of centred psi'
    ' (distance 1 - cosine, optimal leaf order)'
)


def similarity_order(sim_mm: np.ndarray) -> np.ndarray:
  """Leaf order of an average-linkage clustering of a similarity matrix.

  The distance is ``1 - sim`` (symmetrised, clipped to ``[0, 2]``, zero
  diagonal; non-finite entries count as unrelated, distance 1); the leaves
  are put in optimal order (adjacent leaves as similar as possible), so a
  block of mutually similar LLMs is contiguous and the blocks' order
  follows their similarity.

  Args:
    sim_mm: ``[m, m]`` similarity, e.g. cosine in ``[-1, 1]``.

  Returns:
    ``[m]`` int permutation of ``range(m)``.
  """
  sim = np.asarray(sim_mm, np.float64)
  if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
    raise ValueError(
        f'sim_mm: expected a square [m, m] matrix, got {sim.shape}'
    )
  m = sim.shape[0]
  if m < 3:
    return np.arange(m)
  # scipy comes with jax; imported here so that importing the report
  # module (and the CLI) stays cheap.
  from scipy.cluster import hierarchy  # pylint: disable=g-import-not-at-top
  from scipy.spatial import distance  # pylint: disable=g-import-not-at-top

  dist = np.where(np.isfinite(sim), 1.0 - sim, 1.0)
  dist = np.clip(0.5 * (dist + dist.T), 0.0, 2.0)
  np.fill_diagonal(dist, 0.0)
  condensed = distance.squareform(dist, checks=False)
  tree = hierarchy.linkage(condensed, method='average')
  tree = hierarchy.optimal_leaf_ordering(tree, condensed)
  return np.asarray(hierarchy.leaves_list(tree), np.int64)


def build_summary(
    result: TrialResult,
    spec,
    ds,
    grids,
    emb_note: str,
) -> dict[str, Any]:
  """``summary.json`` content of one dataset (see the README)."""
  grid_g = np.linspace(0.0, 1.0, spec.protocol.grid_points)
  rows = summary_lib.summarise(result, grid_g)
  curves = {name: row.pop('curve') for name, row in rows.items()}
  names = list(ds.llm_names)
  test = np.asarray(result.test_llm_m, bool)
  count = test.sum(0)
  sx = np.where(test, np.asarray(result.single_x_m), 0.0).sum(0)
  sq = np.where(test, np.asarray(result.single_quality_m), 0.0).sum(0)
  singles = {
      name: {
          'x': float(sx[j] / count[j]),
          'quality': float(sq[j] / count[j]),
          'trials_in_test_pool': int(count[j]),
      }
      for j, name in enumerate(names)
      if count[j]
  }
  hp = {}
  for name, r in result.methods.items():
    g = grids[name]
    key = next(iter(g)) if g else None
    ta = np.asarray(r.test_area_g, np.float64)
    va = np.asarray(r.val_area_g, np.float64)
    sel = np.asarray(r.selected)
    # A method fitted at the selected point only (a selector) has no test
    # Area at the other candidates.
    every = bool(np.isfinite(ta).all())
    hp[name] = {
        'hp': key,
        'values': [] if key is None else np.asarray(g[key]).tolist(),
        'test_area_mean': ta.mean(0).tolist() if every else None,
        'test_area_std': ta.std(0).tolist() if every else None,
        'val_area_mean': va.mean(0).tolist(),
        'selected_count': np.bincount(sel, minlength=ta.shape[1]).tolist(),
    }
  n = ds.num_prompts
  n_train, n_val, n_test, m_test = protocol.split_sizes(
      n, ds.num_llms, spec.protocol_config()
  )
  bands = {name: row.pop('curve_ci') for name, row in rows.items()}
  # Per-trial positions of each single LLM (trials where it is a test LLM),
  # on the same normalised axis as the curves of that trial.
  positions = {
      name: {
          'x': np.asarray(result.single_x_m)[test[:, j], j].tolist(),
          'quality': (
              np.asarray(result.single_quality_m)[test[:, j], j].tolist()
          ),
      }
      for j, name in enumerate(names)
      if count[j]
  }
  num_eval = np.asarray(result.num_eval)
  ordered = {k: rows[k] for k in ROW_ORDER if k in rows}
  ordered.update({k: v for k, v in rows.items() if k not in ordered})
  return {
      'dataset': ds.name,
      'trials': int(test.shape[0]),
      'llms': names,
      'num_prompts': n,
      'cost_unit': ds.cost_unit,
      'per_prompt_cost': bool(ds.per_prompt_cost),
      'embeddings': emb_note,
      'split': {
          'train_prompts': n_train,
          'val_prompts': n_val,
          'test_prompts': n_test,
          'test_llms': m_test,
          'train_llms': (
              ds.num_llms - m_test
              if not spec.protocol.static_pool
              else ds.num_llms
          ),
      },
      'protocol': {
          k: getattr(spec.protocol, k, getattr(spec, k, None))
          for k in (
              'test_llm_fraction',
              'train_fraction',
              'val_fraction',
              'static_pool',
              'no_training_llms',
              'num_lambdas',
              'grid_points',
              'seed',
          )
      },
      'methods': ordered,
      # [project choice] test prompts labelled for every test LLM count.
      'eval_prompts': {
          'mean': float(num_eval.mean()),
          'min': int(num_eval.min()),
          'max': int(num_eval.max()),
          'of': n_test,
      },
      'single_llms': singles,
      'single_llm_trials': positions,
      'curve_bands': bands,
      'hyperparameters': hp,
      'grid': grid_g.tolist(),
      'mean_curves': {k: curves[k] for k in ordered},
  }


# ------------------------------------------------------------- tables ---


def _fmt(x, pct=False) -> str:
  if isinstance(x, str) or x is None:
    return {'inf': '∞', '-inf': '-∞'}.get(x, str(x))
  if pct:
    return f'{100 * x:.1f}%'
  return f'{x:.3f}'.replace('0.', '.', 1) if 0 <= x < 1 else f'{x:.3f}'


def _star(row: Mapping[str, Any]) -> str:
  test = row.get('sign_test_vs_' + REFERENCE)
  if not test or not test.get('significant'):
    return ''
  return '*' if test['losses'] > test['wins'] else '†'


def markdown_table(summary: Mapping[str, Any]) -> str:
  """The paper's layout for one dataset: Area, Area(50%), QNC (+ peak).

  Values are on the mean curve over trials; brackets hold the 95% interval
  of the per-trial values.
  """
  split = summary['split']
  if summary.get('protocol', {}).get('static_pool'):
    pool = f'static pool: {split["test_llms"]} LLMs train and test'
  elif split.get('train_llms') == 0:
    pool = f'{split["test_llms"]} unseen test LLMs, no training LLMs'
  else:
    pool = f'{split["test_llms"]} unseen test LLMs'
  lines = [
      (
          f'### {summary["dataset"]} ({summary["trials"]} trials, '
          f'{len(summary["llms"])} LLMs, {summary["num_prompts"]} prompts; '
          f'{pool}, N_val = {split["val_prompts"]})'
      ),
      '',
      '| Method | Area | Area(50%) | QNC | Peak | vs UniRoute (W/L) |',
      '|---|---|---|---|---|---|',
  ]
  for name, row in summary['methods'].items():
    cells = []
    for metric, pct in (('area', False), ('area50', False), ('qnc', True)):
      lo, hi = row.get(f'{metric}_ci', [None, None])
      ci = f' [{_fmt(lo, pct)}, {_fmt(hi, pct)}]' if lo is not None else ''
      cells.append(f'{_fmt(row[metric], pct)}{ci}')
    test = row.get('sign_test_vs_' + REFERENCE)
    wl = f'{test["wins"]}/{test["losses"]}' if test else '-'
    label = LABELS.get(name, name) + _star(row)
    lines.append(
        f'| {label} | {" | ".join(cells)} | {_fmt(row["peak"])} | {wl} |'
    )
  lines += [
      '',
      (
          "Mean curve over trials (the paper's aggregation); [95% interval of"
          ' the per-trial values; median and order-statistic interval when'
          ' some trial never reaches the best LLM (QNC = ∞)]. * / †:'
          ' significantly worse / better than UniRoute (K-means) on per-trial'
          f' Area (sign test, alpha = {ALPHA}); W/L: trials won/lost'
          ' against it. QNC of the mean curve: curves averaged on the axis'
          " cost / best test LLM's cost."
      ),
  ]
  ev = summary.get('eval_prompts')
  if ev:
    lines.append(
        f'Scored per trial: the {ev["min"]}-{ev["max"]} of {ev["of"]} test'
        ' prompts labelled for every test LLM.'
    )
  return '\n'.join(lines)


def compact_table(summaries: Sequence[Mapping[str, Any]]) -> str:
  """All datasets side by side (means only, sign-test marks)."""
  head = (
      '| Method | '
      + ' | '.join(f'{s["dataset"]} Area / A50 / QNC' for s in summaries)
      + ' |'
  )
  lines = [head, '|---|' + '---|' * len(summaries)]
  names = [n for n in ROW_ORDER if any(n in s['methods'] for s in summaries)]
  for name in names:
    cells = []
    for s in summaries:
      row = s['methods'].get(name)
      cells.append(
          '-'
          if row is None
          else (
              f'{_fmt(row["area"])} / {_fmt(row["area50"])} / '
              f'{_fmt(row["qnc"], True)}{_star(row)}'
          )
      )
    lines.append(f'| {LABELS.get(name, name)} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def psi_neighbours(corr_mm: np.ndarray, names: Sequence[str]) -> dict:
  """Each LLM's most similar other LLM (centred psi cosine)."""
  sim = np.array(corr_mm, np.float64)
  np.fill_diagonal(sim, -np.inf)
  out = {}
  for i, name in enumerate(names):
    if len(names) > 1:
      j = int(np.argmax(sim[i]))
      out[name] = {'nearest': names[j], 'similarity': float(sim[i, j])}
  return out
