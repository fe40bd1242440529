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
:func:`unirouter_jax.evaluation.protocol.run_protocol`. Trial ``i``'s split
comes from ``fold_in(split_key, i)`` whatever the chunking, and the last
chunk is padded to the same size (padded trials are dropped), so the
protocol compiles once per run.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from unirouter_jax import data as data_lib
from unirouter_jax.core.structs import RoutingData, Split, TrialResult
from unirouter_jax.estimators import builtin as methods_lib
from unirouter_jax.estimators import learned_map
from unirouter_jax.estimators.base import Estimator
from unirouter_jax.evaluation import protocol
from unirouter_jax.evaluation.protocol import ProtocolConfig
from unirouter_jax.shell import chunks, report

# Methods of the paper's tables, in the paper's row order.
DEFAULT_METHODS = (
    'zero_router',
    'knn',
    'uniroute_kmeans',
    'uniroute_learned_map',
    'mlp_oracle',
    'matfac_oracle',
)
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
    methods: estimator names (see ``estimators.builtin.builtin_estimators``).
    protocol: the protocol's settings (trials, split fractions, static pool,
      lambda and cost grids, trial batch); ``num_trials`` is the run's.
    chunk_size: trials per saved chunk (one compiled shape per run).
    seed: the run's PRNG seed.
    epochs_scale: multiplies the training epochs of trained estimators.
    learned_map_arch: ``'mlp'`` (the paper's numbers) or ``'linear'``.
    kmeans_k: K candidates of the cluster routers (empty: method.md 2.4).
    knn_k: k candidates of K-NN (empty: method.md 2.4).
    heatmap_k: clusters of the psi heat-map (0: no heat-map).
    splits: optional ``splits.json`` to evaluate on (its trials replace the
      random ones; ``protocol.num_trials`` must equal their number).
  """

  data: str
  format: str | None = None
  embeddings: str | None = None
  encoder_cache_dir: str | None = None
  max_prompts: int = 0
  methods: tuple[str, ...] = DEFAULT_METHODS
  protocol: ProtocolConfig = ProtocolConfig()
  chunk_size: int = 25
  seed: int = 0
  epochs_scale: float = 1.0
  learned_map_arch: str = 'mlp'
  kmeans_k: tuple[int, ...] = ()
  knn_k: tuple[int, ...] = ()
  heatmap_k: int = 0
  splits: str | None = None

  def __post_init__(self):
    if not self.methods:
      raise ValueError('methods: expected at least one method, got none.')
    for name in self.methods:
      resolve_method(name, self.epochs_scale, self.learned_map_arch)
    if self.chunk_size < 1:
      raise ValueError(f'chunk_size: expected >= 1, got {self.chunk_size}.')
    for name in ('num_trials', 'trial_batch_size'):
      if getattr(self.protocol, name) < 1:
        raise ValueError(
            f'{name}: expected >= 1, got {getattr(self.protocol, name)}.'
        )
    if self.learned_map_arch not in ('mlp', 'linear'):
      raise ValueError(
          "learned_map_arch: expected 'mlp' or 'linear', got "
          f'{self.learned_map_arch!r}.'
      )

  @property
  def num_trials(self) -> int:
    return self.protocol.num_trials

  def protocol_config(self, num_trials: int | None = None) -> ProtocolConfig:
    """The protocol of one chunk (``num_trials`` trials)."""
    return dataclasses.replace(
        self.protocol,
        num_trials=self.num_trials if num_trials is None else num_trials,
        trial_batch_size=min(self.protocol.trial_batch_size, self.chunk_size),
    )

  def to_json(self) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(self).items()
    }

  @classmethod
  def create(cls, data: str, **kw) -> RunSpec:
    """A spec from flat keywords: ``ProtocolConfig`` fields go to ``protocol``."""
    names = {f.name for f in dataclasses.fields(ProtocolConfig)}
    proto = {k: kw.pop(k) for k in list(kw) if k in names}
    return cls(data=data, protocol=ProtocolConfig(**proto), **kw)


# Spec fields that do not change any number (a rerun may change them).
_COSMETIC = ('encoder_cache_dir', 'heatmap_k')


# ---------------------------------------------------------------- files ---


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
    for psi_from, name in (
        ('val', 'uniroute_learned_map'),
        ('train', 'uniroute_learned_map_train_psi'),
    ):
      est[name] = methods_lib.uniroute_learned_map(
          arch=arch, epochs=epochs, psi_from=psi_from
      )
  return est


@functools.lru_cache(maxsize=32)
def _user_estimator(spec_text: str) -> Estimator:
  module, _, attr = spec_text.partition(':')
  # Console scripts do not put the working directory on sys.path; a user's
  # module (e.g. examples/...) is looked up there too.
  if os.getcwd() not in sys.path:
    sys.path.append(os.getcwd())
  try:
    factory = getattr(importlib.import_module(module), attr)
  except (ImportError, AttributeError) as e:
    raise ValueError(
        f'methods: cannot import {spec_text!r} ({type(e).__name__}: {e}).'
    ) from None
  est = factory()
  if not isinstance(est, Estimator):
    raise ValueError(
        f'methods: {spec_text!r} returned {type(est).__name__}, expected an '
        'unirouter_jax.Estimator.'
    )
  return est


def resolve_method(name: str, epochs_scale: float, arch: str) -> Estimator:
  """A built-in estimator by name, or a user's as ``module:function``.

  ``module:function`` names a factory returning an :class:`Estimator`; the
  module is imported because the user named it (an explicit import, not a
  registry), e.g. ``examples.low_rank_uniroute:estimator``.

  Raises:
    ValueError: unknown name or a factory that cannot be imported.
  """
  if ':' in name:
    return _user_estimator(name)
  est = _estimators(float(epochs_scale), arch)
  if name not in est:
    raise ValueError(
        f'methods: unknown method {name!r}; expected some of '
        f'{", ".join(est)} or module:function.'
    )
  return est[name]


def select_estimators(spec: RunSpec) -> dict[str, Estimator]:
  """The requested estimators by table name, in ``spec.methods`` order."""
  out = {}
  for name in spec.methods:
    est = resolve_method(name, spec.epochs_scale, spec.learned_map_arch)
    out[est.name if ':' in name else name] = est
  return out


def grid_overrides(spec: RunSpec, estimators) -> dict[str, dict]:
  """Hyperparameter grids given in the spec (others use method.md 2.4)."""
  grids = {}
  ks = np.asarray(spec.kmeans_k, np.int32)
  if ks.size:
    learned = ('uniroute_learned_map', 'uniroute_learned_map_train_psi')
    for name in ('uniroute_kmeans', *learned):
      if name in estimators:
        grids[name] = {'k': ks}
      if name in learned and name in estimators:
        grids[name]['lr'] = np.full(
            ks.shape, learned_map.LEARNING_RATE, np.float32
        )
  if len(spec.knn_k) and 'knn' in estimators:
    grids['knn'] = {'k': np.asarray(spec.knn_k, np.int32)}
  return grids


# --------------------------------------------------------------- chunks ---


# --------------------------------------------------------------- splits ---


def splits_to_json(splits: Split, ds) -> list[dict[str, list]]:
  """The trials as ``splits.json`` records (names and prompt ids).

  Each record is ``{"test_llms": [names], "train": [ids], "val": [ids],
  "test": [ids]}``; prompt ids are the data's ``prompt_id`` / ``sample_id``
  column, else the 0-based row. Another implementation reading this file
  evaluates on the very same splits, trial by trial.
  """
  names = np.asarray(ds.llm_names)
  ids = np.asarray(ds.prompt_ids).astype(str)
  out = []
  for i in range(splits.train_idx.shape[0]):
    out.append({
        'test_llms': names[np.asarray(splits.test_llm_m[i])].tolist(),
        'train': ids[np.asarray(splits.train_idx[i])].tolist(),
        'val': ids[np.asarray(splits.val_idx[i])].tolist(),
        'test': ids[np.asarray(splits.test_idx[i])].tolist(),
    })
  return out


def read_splits(path, ds, key) -> Split:
  """``splits.json`` as a stacked :class:`Split` (trial keys from ``key``).

  Raises:
    ValueError: naming the file, the trial and the field, on an unknown
      LLM or prompt id, a duplicate, overlapping sets, or trials of unequal
      sizes (the protocol needs one compiled shape).
  """
  try:
    records = json.loads(pathlib.Path(path).read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(
        f'--splits {path}: not a readable JSON file ({e}).'
    ) from None
  if not isinstance(records, list) or not records:
    raise ValueError(f'--splits {path}: expected a non-empty list of trials.')
  llm = {name: j for j, name in enumerate(ds.llm_names)}
  row = {str(x): i for i, x in enumerate(np.asarray(ds.prompt_ids))}
  m = len(llm)
  cols = {f: [] for f in ('train', 'val', 'test')}
  test_m = []
  for t, rec in enumerate(records):
    where = f'--splits {path}: trial {t}'
    if not isinstance(rec, dict) or set(rec) < {'test_llms', *cols}:
      raise ValueError(
          f'{where}: expected keys test_llms, train, val, test; got '
          f'{sorted(rec) if isinstance(rec, dict) else type(rec).__name__}.'
      )
    unknown = [x for x in rec['test_llms'] if x not in llm]
    if unknown:
      raise ValueError(f'{where}: test_llms: unknown LLM {unknown[0]!r}.')
    mask = np.zeros((m,), bool)
    mask[[llm[x] for x in rec['test_llms']]] = True
    if not 1 <= mask.sum() < m:
      raise ValueError(
          f'{where}: test_llms: expected 1..{m - 1} LLMs, got {mask.sum()}.'
      )
    test_m.append(mask)
    seen = set()
    for f in cols:
      bad = [x for x in rec[f] if str(x) not in row]
      if bad:
        raise ValueError(f'{where}: {f}: unknown prompt id {bad[0]!r}.')
      idx = [row[str(x)] for x in rec[f]]
      if seen & set(idx) or len(set(idx)) != len(idx):
        raise ValueError(f'{where}: {f}: a prompt appears twice.')
      seen |= set(idx)
      if t and len(idx) != len(cols[f][0]):
        raise ValueError(
            f'{where}: {f}: {len(idx)} prompts, but trial 0 has '
            f'{len(cols[f][0])} (every trial needs the same sizes).'
        )
      if not idx:
        raise ValueError(f'{where}: {f}: expected at least one prompt.')
      cols[f].append(idx)
  test_sm = np.stack(test_m)
  if len({int(x) for x in test_sm.sum(1)}) != 1:
    raise ValueError(
        f'--splits {path}: every trial needs the same number of test LLMs.'
    )
  return Split(
      train_idx=jax.numpy.asarray(cols['train'], np.int32),
      val_idx=jax.numpy.asarray(cols['val'], np.int32),
      test_idx=jax.numpy.asarray(cols['test'], np.int32),
      train_llm_m=jax.numpy.asarray(~test_sm),
      test_llm_m=jax.numpy.asarray(test_sm),
      key=protocol.trial_keys(key, np.arange(len(records))),
  )


def _take_trials(splits: Split, lo: int, size: int) -> Split:
  """Trials ``lo .. lo + size - 1``, the last one repeated past the end."""
  total = splits.train_idx.shape[0]
  idx = np.minimum(np.arange(lo, lo + size), total - 1)
  return jax.tree.map(lambda x: x[idx], splits)


def all_splits(spec: RunSpec, ds, data: RoutingData) -> Split:
  """Every trial's split: from ``spec.splits`` or drawn from the seed."""
  split_key = jax.random.split(jax.random.key(spec.seed))[0]
  if spec.splits:
    return read_splits(spec.splits, ds, split_key)
  cfg = spec.protocol_config()
  return protocol.make_splits(split_key, data.num_prompts, data.num_llms, cfg)


# ------------------------------------------------------------------ run ---


def run_trials(
    spec: RunSpec,
    workdir: pathlib.Path,
    data: RoutingData,
    estimators,
    grids,
    splits: Split,
    *,
    progress: bool = True,
    desc: str = '',
) -> tuple[TrialResult, int]:
  """Runs (or resumes) all chunks; returns all trials and chunks computed."""
  import tqdm  # pylint: disable=g-import-not-at-top

  chunk = min(spec.chunk_size, spec.num_trials)
  num_chunks = -(-spec.num_trials // chunk)
  cfg = spec.protocol_config(num_trials=chunk)
  metrics_path = workdir / 'metrics.jsonl'

  done = [
      c for c in range(num_chunks) if chunks.chunk_path(workdir, c).exists()
  ]
  # Keep metrics.jsonl consistent with the saved chunks (a run killed
  # between saving a chunk and appending its records loses nothing).
  recs = []
  for c in done:
    recs += chunks.trial_records(
        chunks.load_chunk(chunks.chunk_path(workdir, c)),
        c,
        c * chunk,
        grids,
        data.llm_names,
    )
  chunks.write_jsonl(metrics_path, recs)

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
      # Trial i's split depends on (seed, i) only, not on the chunking.
      res = protocol.run_protocol(
          jax.random.key(spec.seed),
          data,
          estimators,
          cfg,
          grids=grids,
          splits=_take_trials(splits, c * chunk, chunk),
      )
      flat = {k: v[:size] for k, v in chunks.flatten(res).items()}
      chunks.save_chunk(chunks.chunk_path(workdir, c), flat)
      chunks.append_jsonl(
          metrics_path,
          chunks.trial_records(flat, c, c * chunk, grids, data.llm_names),
      )
      computed += 1
      bar.update(size)

  flats = [
      chunks.load_chunk(chunks.chunk_path(workdir, c))
      for c in range(num_chunks)
  ]
  allf = {k: np.concatenate([f[k] for f in flats]) for k in flats[0]}
  return chunks.unflatten(allf), computed


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
  chunks.write_json(workdir / 'config.json', spec.to_json())
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
  splits = all_splits(spec, ds, data)
  if splits.train_idx.shape[0] != spec.num_trials:
    raise ValueError(
        f'--splits {spec.splits}: {splits.train_idx.shape[0]} trials, but '
        f'--trials is {spec.num_trials}.'
    )
  chunks.write_json(workdir / 'splits.json', splits_to_json(splits, ds))
  result, computed = run_trials(
      spec,
      workdir,
      data,
      estimators,
      grids,
      splits,
      progress=progress,
      desc=ds.name,
  )
  out = report.build_summary(result, spec, ds, grids, note)
  out['split'].update(
      train_prompts=int(splits.train_idx.shape[1]),
      val_prompts=int(splits.val_idx.shape[1]),
      test_prompts=int(splits.test_idx.shape[1]),
      test_llms=int(np.asarray(splits.test_llm_m[0]).sum()),
  )
  out['splits_file'] = spec.splits or 'splits.json (drawn from the seed)'
  out['chunks_computed_this_run'] = computed
  out['seconds_this_run'] = round(time.time() - t0, 1)
  chunks.write_json(workdir / 'summary.json', out)
  table = report.markdown_table(out)
  chunks.atomic_write(workdir / 'results.md', lambda f: f.write(table + '\n'))
  if plots:
    # matplotlib is imported by plots only, and only when plotting.
    from unirouter_jax.shell import plots as plots_lib  # pylint: disable=g-import-not-at-top

    plots_lib.deferral_curves(workdir / 'plots' / 'deferral_curves.png', out)
    plots_lib.area_vs_hp(workdir / 'plots' / 'area_vs_k.png', out)
    if spec.heatmap_k:
      cos_mm, corr_mm, order = report.psi_similarity(
          data, spec.heatmap_k, spec.seed
      )
      plots_lib.psi_heatmap(
          workdir / 'plots' / 'psi_similarity.png',
          cos_mm,
          corr_mm,
          order,
          list(ds.llm_names),
          title=f'{ds.name}: psi similarity (K = {spec.heatmap_k})',
      )
      out['psi_similarity'] = report.psi_neighbours(corr_mm, list(ds.llm_names))
      chunks.write_json(workdir / 'summary.json', out)
  return out
