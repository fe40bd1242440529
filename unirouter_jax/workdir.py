"""Resumable protocol runs in a working directory (the imperative shell).

Shared by ``experiments/reproduce.py`` and ``unirouter evaluate``. A run is
described by a frozen :class:`RunSpec` (plain values, no ConfigDict) and
writes, into its workdir:

* ``config.json``: the spec; a rerun with a different spec is refused.
* ``chunks/chunk_NNNN.npz``: the per-trial arrays of each chunk of trials
  (written atomically: temp file, then ``os.replace``). A rerun skips the
  chunks already there, so an interrupted run resumes where it stopped.
* ``metrics.jsonl``: one record per (trial, method) with its coordinates.
* ``summary.json``, ``results.md`` and PNG plots (``plots/``).

Trials are run in chunks of ``chunk_size`` with
:func:`unirouter_jax.protocol.run_protocol`. The splits of chunk ``c`` come
from ``fold_in(split_key, c)``, and the last chunk is padded to the same
size (padded trials are dropped), so the protocol compiles once per run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pathlib
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax import data as data_lib
from unirouter_jax import features, kmeans, protocol
from unirouter_jax import methods as methods_lib
from unirouter_jax import summary as summary_lib
from unirouter_jax.protocol import MethodResult, ProtocolConfig, TrialResult
from unirouter_jax.structs import CurveMetrics, RoutingData

# Methods of the paper's tables, in the paper's row order.
DEFAULT_METHODS = (
    'zero_router',
    'knn',
    'uniroute_kmeans',
    'uniroute_learned_map',
    'mlp_oracle',
    'matfac_oracle',
)
# Table rows: every method the library knows, then the per-prompt Oracle.
ROW_ORDER = (
    'zero_router',
    'knn',
    'uniroute_kmeans',
    'uniroute_soft_kmeans',
    'uniroute_learned_map',
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
    'mlp_oracle': 'MLP (clairvoyant)',
    'matfac_oracle': 'MatFac (clairvoyant)',
    'oracle': 'Oracle (per prompt)',
}
REFERENCE = 'uniroute_kmeans'
ALPHA = 0.01

# Protocol defaults per dataset (method.md section 3). The paper: LLMs 2/3
# train, 1/3 test (RouterBench 50/50); prompts 60/10/30 (RouterBench and
# SPROUT: validation 1%). [project choice] Our RouterBench subset has 3,178
# prompts, not 36k: a 10% validation set (~318 prompts) matches the paper's
# absolute N_val (1% of 36k = ~360) better than 1% would (32 prompts).
DATASET_PROTOCOL: dict[str, dict[str, float]] = {
    'routerbench_subset': dict(
        test_llm_fraction=0.5, train_fraction=0.6, val_fraction=0.1
    ),
    'routerbench': dict(
        test_llm_fraction=0.5, train_fraction=0.6, val_fraction=0.01
    ),
    'sprout': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.01
    ),
    'embedllm': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.1
    ),
    'llmrouter_dc': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.1
    ),
    'alpacaeval': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.1
    ),
}


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """Everything that determines a run (stored as ``config.json``).

  Attributes:
    data: a bundled dataset name or a path.
    format: loader format (None: bundled name or inferred from the path).
    embeddings: optional ``.npy`` of prompt embeddings (rows in file order).
    encoder_cache_dir: cache of the default encoder (None: its default).
    max_prompts: if > 0, a seeded random subset of this many prompts.
    methods: estimator names (see ``methods.builtin_estimators``).
    num_trials: random splits.
    test_llm_fraction: share of LLMs held out as unseen test LLMs.
    train_fraction: share of prompts that fit the prompt side.
    val_fraction: share of prompts in the probe (validation) set.
    static_pool: train and test pools are all LLMs.
    num_lambdas: size of the cost-weight grid.
    grid_points: size of the common normalised-cost grid.
    trial_batch_size: trials evaluated together inside a chunk.
    chunk_size: trials per saved chunk (one compiled shape per run).
    seed: the run's PRNG seed.
    epochs_scale: multiplies the training epochs of trained estimators.
    learned_map_arch: ``'mlp'`` (the paper's numbers) or ``'linear'``.
    kmeans_k: K candidates of the cluster routers (empty: method.md 2.4).
    knn_k: k candidates of K-NN (empty: method.md 2.4).
    heatmap_k: clusters of the psi heat-map (0: no heat-map).
  """

  data: str
  format: str | None = None
  embeddings: str | None = None
  encoder_cache_dir: str | None = None
  max_prompts: int = 0
  methods: tuple[str, ...] = DEFAULT_METHODS
  num_trials: int = 400
  test_llm_fraction: float = 1 / 3
  train_fraction: float = 0.6
  val_fraction: float = 0.1
  static_pool: bool = False
  num_lambdas: int = 200
  grid_points: int = 101
  trial_batch_size: int = 8
  chunk_size: int = 25
  seed: int = 0
  epochs_scale: float = 1.0
  learned_map_arch: str = 'mlp'
  kmeans_k: tuple[int, ...] = ()
  knn_k: tuple[int, ...] = ()
  heatmap_k: int = 0

  def __post_init__(self):
    known = tuple(methods_lib.builtin_estimators())
    if not self.methods:
      raise ValueError('methods: expected at least one method, got none.')
    for name in self.methods:
      if name not in known:
        raise ValueError(
            f'methods: unknown method {name!r}; expected some of '
            f'{", ".join(known)}.'
        )
    for name in ('num_trials', 'chunk_size', 'trial_batch_size'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name}: expected >= 1, got {getattr(self, name)}.')
    if self.learned_map_arch not in ('mlp', 'linear'):
      raise ValueError(
          "learned_map_arch: expected 'mlp' or 'linear', got "
          f'{self.learned_map_arch!r}.'
      )

  def protocol_config(self, num_trials: int | None = None) -> ProtocolConfig:
    return ProtocolConfig(
        num_trials=self.num_trials if num_trials is None else num_trials,
        test_llm_fraction=self.test_llm_fraction,
        train_fraction=self.train_fraction,
        val_fraction=self.val_fraction,
        static_pool=self.static_pool,
        num_lambdas=self.num_lambdas,
        grid_points=self.grid_points,
        trial_batch_size=min(self.trial_batch_size, self.chunk_size),
    )

  def to_json(self) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(self).items()
    }


# Spec fields that do not change any number (a rerun may change them).
_COSMETIC = ('encoder_cache_dir', 'heatmap_k')


# ---------------------------------------------------------------- files ---


def atomic_write(
    path: str | os.PathLike, write: Callable[[Any], None], mode: str = 'w'
) -> None:
  """Calls ``write(f)`` on a temp file beside ``path``, then renames it."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.' + path.name)
  try:
    with os.fdopen(fd, mode) as f:
      write(f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path, obj) -> None:
  atomic_write(path, lambda f: json.dump(obj, f, indent=1, allow_nan=False))


def check_config(workdir: pathlib.Path, spec: RunSpec) -> bool:
  """True if ``workdir`` holds results of this very spec (a resume).

  A workdir without saved chunks may be reused by any spec.

  Raises:
    ValueError: the workdir holds results of another configuration.
  """
  path = workdir / 'config.json'
  if not path.exists():
    return False
  old, new = json.loads(path.read_text()), spec.to_json()
  diff = sorted(
      k
      for k in set(old) | set(new)
      if k not in _COSMETIC and old.get(k) != new.get(k)
  )
  has_chunks = any((workdir / 'chunks').glob('chunk_*.npz'))
  if diff and has_chunks:
    k = diff[0]
    raise ValueError(
        f'{workdir} holds a run with another configuration ({k}: '
        f'{old.get(k)!r} there, {new.get(k)!r} now; {len(diff)} field(s) '
        'differ); use another workdir or delete it.'
    )
  return not diff and has_chunks


# ----------------------------------------------------------------- data ---


def load_routing_data(spec: RunSpec):
  """Loads the dataset and its embeddings; returns ``(dataset, data, note)``.

  ``note`` says where the embeddings came from.
  """
  ds = data_lib.load(spec.data, format=spec.format)
  if spec.embeddings:
    emb = data_lib.load_embeddings_npy(spec.embeddings, ds)
    note = f'from {spec.embeddings}'
  else:
    # The encoder loads its weights on import: only import it when needed.
    from unirouter_jax import encoder  # pylint: disable=g-import-not-at-top

    if spec.format is None and spec.data in data_lib.BUNDLED:
      emb = encoder.bundled_embeddings(ds)
      note = (
          'bundled MiniLM-L6-v2 embeddings (truncation policy '
          f'{encoder.DEFAULT_POLICY!r})'
      )
    else:
      kw = {}
      if spec.encoder_cache_dir:
        kw['cache_dir'] = spec.encoder_cache_dir
      emb = encoder.embed(list(ds.prompts), **kw)
      note = 'MiniLM-L6-v2 (default encoder, cached)'
  emb = np.asarray(emb, np.float32)
  if spec.max_prompts and spec.max_prompts < ds.num_prompts:
    perm = jax.random.permutation(
        jax.random.fold_in(jax.random.key(spec.seed), 7), ds.num_prompts
    )
    idx = np.sort(np.asarray(perm)[: spec.max_prompts])
    ds, emb = ds.subset(prompt_idx=idx), emb[idx]
  data = RoutingData.create(
      emb, ds.quality_nm, ds.cost_nm, ds.label_mask_nm, ds.llm_names
  )
  return ds, data, note


@functools.lru_cache(maxsize=8)
def _estimators(epochs_scale: float, arch: str) -> dict[str, Any]:
  # Cached so that runs in one process share Estimator objects, and with
  # them the protocol's compiled program (its cache keys on the functions).
  est = methods_lib.builtin_estimators(epochs_scale=epochs_scale)
  if arch != 'mlp':
    epochs = max(1, int(round(5 * epochs_scale)))
    est['uniroute_learned_map'] = methods_lib.uniroute_learned_map(
        arch=arch, epochs=epochs
    )
  return est


def select_estimators(spec: RunSpec) -> dict[str, Any]:
  """The requested built-in estimators, in ``spec.methods`` order."""
  est = _estimators(float(spec.epochs_scale), spec.learned_map_arch)
  return {name: est[name] for name in spec.methods}


def grid_overrides(spec: RunSpec, estimators) -> dict[str, dict]:
  """Hyperparameter grids given in the spec (others use method.md 2.4)."""
  grids = {}
  ks = np.asarray(spec.kmeans_k, np.int32)
  if ks.size:
    for name in ('uniroute_kmeans', 'uniroute_learned_map'):
      if name in estimators:
        grids[name] = {'k': ks}
    if 'uniroute_learned_map' in grids:
      grids['uniroute_learned_map']['lr'] = np.full(ks.shape, 5e-3, np.float32)
  if len(spec.knn_k) and 'knn' in estimators:
    grids['knn'] = {'k': np.asarray(spec.knn_k, np.int32)}
  return grids


# --------------------------------------------------------------- chunks ---


def _flatten(result: TrialResult) -> dict[str, np.ndarray]:
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(result)[0]:
    key = '/'.join(
        str(getattr(p, 'name', getattr(p, 'key', getattr(p, 'idx', p))))
        for p in path
    )
    out[key] = np.asarray(leaf)
  return out


def _curve(flat, prefix) -> CurveMetrics:
  return CurveMetrics(**{
      f.name: flat[f'{prefix}/{f.name}']
      for f in dataclasses.fields(CurveMetrics)
  })


def _unflatten(flat: Mapping[str, np.ndarray]) -> TrialResult:
  names = sorted({k.split('/')[1] for k in flat if k.startswith('methods/')})
  methods = {}
  for name in names:
    p = f'methods/{name}'
    methods[name] = MethodResult(
        metrics=_curve(flat, f'{p}/metrics'),
        selected=flat[f'{p}/selected'],
        test_area_g=flat[f'{p}/test_area_g'],
        val_area_g=flat[f'{p}/val_area_g'],
    )
  rest = {
      f.name: flat[f.name]
      for f in dataclasses.fields(TrialResult)
      if f.name not in ('methods', 'oracle')
  }
  return TrialResult(methods=methods, oracle=_curve(flat, 'oracle'), **rest)


def _chunk_path(workdir: pathlib.Path, c: int) -> pathlib.Path:
  return workdir / 'chunks' / f'chunk_{c:04d}.npz'


def _save_chunk(path: pathlib.Path, flat: Mapping[str, np.ndarray]) -> None:
  atomic_write(path, lambda f: np.savez(f, **flat), mode='wb')


def _load_chunk(path: pathlib.Path) -> dict[str, np.ndarray]:
  with np.load(path) as z:
    return {k: z[k] for k in z.files}


def _json_num(x) -> Any:
  x = float(x)
  if math.isinf(x):
    return 'inf' if x > 0 else '-inf'
  return None if math.isnan(x) else x


def trial_records(
    flat: Mapping[str, np.ndarray],
    chunk: int,
    first_trial: int,
    grids: Mapping[str, Mapping[str, np.ndarray]],
    llm_names: Sequence[str],
) -> list[dict[str, Any]]:
  """One ``metrics.jsonl`` record per (trial, method) of a chunk."""
  res = _unflatten(flat)
  curves = {n: r.metrics for n, r in res.methods.items()}
  curves['oracle'] = res.oracle
  recs = []
  for i in range(np.asarray(res.best_quality).shape[0]):
    test_llms = [
        n for n, t in zip(llm_names, res.test_llm_m[i], strict=True) if t
    ]
    for name, c in curves.items():
      rec = {
          'trial': first_trial + i,
          'chunk': chunk,
          'method': name,
          'area': _json_num(c.area[i]),
          'area50': _json_num(c.area50[i]),
          'qnc': _json_num(c.qnc[i]),
          'peak': _json_num(c.peak[i]),
      }
      if name in res.methods:
        sel = int(res.methods[name].selected[i])
        rec['selected'] = {
            k: np.asarray(v)[sel].item() for k, v in grids[name].items()
        }
      rec['test_llms'] = test_llms
      recs.append(rec)
  return recs


def _write_jsonl(path: pathlib.Path, recs) -> None:
  atomic_write(
      path,
      lambda f: f.writelines(
          json.dumps(r, allow_nan=False) + '\n' for r in recs
      ),
  )


def _append_jsonl(path: pathlib.Path, recs) -> None:
  with open(path, 'a') as f:
    f.writelines(json.dumps(r, allow_nan=False) + '\n' for r in recs)


# ------------------------------------------------------------------ run ---


def run_trials(
    spec: RunSpec,
    workdir: pathlib.Path,
    data: RoutingData,
    estimators,
    grids,
    *,
    progress: bool = True,
    desc: str = '',
) -> tuple[TrialResult, int]:
  """Runs (or resumes) all chunks; returns all trials and chunks computed."""
  from tqdm import auto as tqdm  # pylint: disable=g-import-not-at-top

  chunk = min(spec.chunk_size, spec.num_trials)
  num_chunks = -(-spec.num_trials // chunk)
  cfg = spec.protocol_config(num_trials=chunk)
  base = jax.random.key(spec.seed)
  split_key, trial_key = jax.random.split(base)
  n, m = data.num_prompts, data.num_llms
  metrics_path = workdir / 'metrics.jsonl'

  done = [c for c in range(num_chunks) if _chunk_path(workdir, c).exists()]
  # Keep metrics.jsonl consistent with the saved chunks (a run killed
  # between saving a chunk and appending its records loses nothing).
  recs = []
  for c in done:
    recs += trial_records(
        _load_chunk(_chunk_path(workdir, c)),
        c,
        c * chunk,
        grids,
        data.llm_names,
    )
  _write_jsonl(metrics_path, recs)

  computed = 0
  bar = tqdm.tqdm(
      total=spec.num_trials,
      initial=min(len(done) * chunk, spec.num_trials),
      desc=desc or 'trials',
      unit='trial',
      disable=not progress,
      dynamic_ncols=True,
  )
  with bar:
    for c in range(num_chunks):
      if c in done:
        continue
      size = min(chunk, spec.num_trials - c * chunk)
      splits = protocol.make_splits(jax.random.fold_in(split_key, c), n, m, cfg)
      res = protocol.run_protocol(
          jax.random.fold_in(trial_key, c),
          data,
          estimators,
          cfg,
          grids=grids,
          splits=splits,
      )
      flat = {k: v[:size] for k, v in _flatten(res).items()}
      _save_chunk(_chunk_path(workdir, c), flat)
      _append_jsonl(
          metrics_path,
          trial_records(flat, c, c * chunk, grids, data.llm_names),
      )
      computed += 1
      bar.update(size)

  flats = [_load_chunk(_chunk_path(workdir, c)) for c in range(num_chunks)]
  allf = {k: np.concatenate([f[k] for f in flats]) for k in flats[0]}
  return _unflatten(allf), computed


def psi_similarity(data: RoutingData, k: int, seed: int = 0):
  """Cosine similarity of the LLMs' ``psi`` columns on all prompts.

  K-means with ``k`` clusters on all prompts; ``psi`` of every LLM from all
  its labels. Returns ``(cos_mm, corr_mm, order_m)``: the cosine similarity
  of the raw ``psi`` columns, that of the columns centred on each LLM's
  mean (its error profile across clusters, free of overall accuracy), and
  an order of the LLMs by the first principal component of the centred
  columns (related LLMs end up next to each other).
  """
  n = data.num_prompts
  k = int(min(k, n))
  clustering = kmeans.kmeans(
      jax.random.key(seed), data.emb_nd, jnp.ones((n,)), k, k_max=k
  )
  assign_nk = kmeans.one_hot_assign(data.emb_nd, clustering)
  feats = features.llm_features(
      assign_nk,
      1.0 - data.quality_nm,
      data.label_mask_nm,
      cluster_mask_k=clustering.cluster_mask_k,
  )
  psi_km = np.asarray(feats.psi_km, np.float64)

  def cos(x_km):
    norm = np.linalg.norm(x_km, axis=0, keepdims=True)
    x = x_km / np.maximum(norm, 1e-12)
    return x.T @ x

  centred = psi_km - psi_km.mean(0, keepdims=True)
  if centred.shape[1] > 1 and np.any(centred):
    # First principal component over LLMs (rows = LLMs as samples).
    x = centred.T - centred.T.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    order = np.argsort(x @ vt[0], kind='stable')
  else:
    order = np.arange(psi_km.shape[1])
  return cos(psi_km), cos(centred), order


def build_summary(
    result: TrialResult,
    spec: RunSpec,
    ds,
    grids,
    emb_note: str,
) -> dict[str, Any]:
  """``summary.json`` content of one dataset (see the README)."""
  grid_g = np.linspace(0.0, 1.0, spec.grid_points)
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
    hp[name] = {
        'hp': key,
        'values': [] if key is None else np.asarray(g[key]).tolist(),
        'test_area_mean': ta.mean(0).tolist(),
        'test_area_std': ta.std(0).tolist(),
        'val_area_mean': va.mean(0).tolist(),
        'selected_count': np.bincount(sel, minlength=ta.shape[1]).tolist(),
    }
  n = ds.num_prompts
  n_train, n_val, n_test, m_test = protocol.split_sizes(
      n, ds.num_llms, spec.protocol_config()
  )
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
              ds.num_llms - m_test if not spec.static_pool else ds.num_llms
          ),
      },
      'protocol': {
          k: getattr(spec, k)
          for k in (
              'test_llm_fraction',
              'train_fraction',
              'val_fraction',
              'static_pool',
              'num_lambdas',
              'grid_points',
              'seed',
          )
      },
      'methods': ordered,
      'single_llms': singles,
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
  lines = [
      (
          f'### {summary["dataset"]} ({summary["trials"]} trials, '
          f'{len(summary["llms"])} LLMs, {summary["num_prompts"]} prompts; '
          f'{summary["split"]["test_llms"]} unseen test LLMs, '
          f'N_val = {summary["split"]["val_prompts"]})'
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
          ' against it.'
      ),
  ]
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


# ---------------------------------------------------------------- entry ---


def run(
    spec: RunSpec,
    workdir: str | os.PathLike,
    *,
    progress: bool = True,
    plots: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
  """Runs or resumes ``spec`` in ``workdir``; returns the summary dict."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  resumed = check_config(workdir, spec)
  t0 = time.time()
  ds, data, note = load_routing_data(spec)
  write_json(workdir / 'config.json', spec.to_json())
  estimators = select_estimators(spec)
  cfg = spec.protocol_config()
  grids, _ = protocol.prepare(
      data, estimators, cfg, grid_overrides(spec, estimators)
  )
  log(
      f'{ds.name}: {ds.num_prompts} prompts x {ds.num_llms} LLMs, '
      f'{spec.num_trials} trials'
      + (' (resuming)' if resumed else '')
  )
  result, computed = run_trials(
      spec, workdir, data, estimators, grids, progress=progress, desc=ds.name
  )
  out = build_summary(result, spec, ds, grids, note)
  out['chunks_computed_this_run'] = computed
  out['seconds_this_run'] = round(time.time() - t0, 1)
  write_json(workdir / 'summary.json', out)
  table = markdown_table(out)
  atomic_write(workdir / 'results.md', lambda f: f.write(table + '\n'))
  if plots:
    # matplotlib is imported by plots only, and only when plotting.
    from unirouter_jax import plots as plots_lib  # pylint: disable=g-import-not-at-top

    plots_lib.deferral_curves(workdir / 'plots' / 'deferral_curves.png', out)
    plots_lib.area_vs_hp(workdir / 'plots' / 'area_vs_k.png', out)
    if spec.heatmap_k:
      cos_mm, corr_mm, order = psi_similarity(data, spec.heatmap_k, spec.seed)
      plots_lib.psi_heatmap(
          workdir / 'plots' / 'psi_similarity.png',
          cos_mm,
          corr_mm,
          order,
          list(ds.llm_names),
          title=f'{ds.name}: psi similarity (K = {spec.heatmap_k})',
      )
      out['psi_similarity'] = psi_neighbours(corr_mm, list(ds.llm_names))
      write_json(workdir / 'summary.json', out)
  return out


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
