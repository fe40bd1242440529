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
import json
import os
import pathlib
import shutil
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from unirouter_jax import data as data_lib
from unirouter_jax.core.structs import RoutingData, Split, TrialResult
from unirouter_jax.evaluation import protocol, sweep
from unirouter_jax.evaluation.protocol import ProtocolConfig
from unirouter_jax.shell import chunks, report, splits_file

# Re-exported: the defaults live in shell/defaults.py (no JAX import).
from unirouter_jax.shell.defaults import (  # noqa: F401 (re-exported)
    DATASET_PROTOCOL,
    DEFAULT_METHODS,
)
from unirouter_jax.shell.run_methods import (
    grid_overrides,
    resolve_method,
    select_estimators,
)


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
    devices: how many devices the trials are sharded over (0: all, every
      host's under ``jax.distributed``).
    dedup: merge prompts of identical text (None: the data's default:
      bundled sets merged, user files keep every row; ``data.load``).
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
  devices: int = 0
  dedup: bool | None = None

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
# Batching and devices change float rounding only.
_COSMETIC = ('encoder_cache_dir', 'heatmap_k', 'devices')


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
  old = json.loads(path.read_text())
  new = json.loads(json.dumps(spec.to_json()))
  for d in (old, new):  # padding changes float rounding only
    if isinstance(d.get('protocol'), dict):
      d['protocol'].pop('padding', None)
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
  ds = data_lib.load(spec.data, format=spec.format, dedup=spec.dedup)
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


# --------------------------------------------------------------- splits ---


def _take_trials(splits: Split, lo: int, size: int) -> Split:
  """Trials ``lo .. lo + size - 1``, the last one repeated past the end."""
  total = splits.train_idx.shape[0]
  idx = np.minimum(np.arange(lo, lo + size), total - 1)
  return jax.tree.map(lambda x: x[idx], splits)


def all_splits(spec: RunSpec, ds, data: RoutingData) -> Split:
  """Every trial's split: from ``spec.splits`` or drawn from the seed."""
  split_key = jax.random.split(jax.random.key(spec.seed))[0]
  if spec.splits:
    return splits_file.read(spec.splits, ds, split_key)
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
    timing: dict[str, float] | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[TrialResult, int]:
  """Runs (or resumes) all chunks; returns all trials and chunks computed.

  The protocol is compiled ahead of time once (its seconds are added to
  ``timing['compile_s']``) and that executable runs every chunk
  (``timing['run_s']``).
  """
  timing = {'compile_s': 0.0, 'run_s': 0.0} if timing is None else timing
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
  mesh = sweep.trial_mesh(spec.devices)
  program = None
  timing['devices'] = mesh.devices.size
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
      prog = sweep.prepare_sweep(
          jax.random.key(spec.seed),
          data,
          estimators,
          cfg,
          grids=grids,
          splits=_take_trials(splits, c * chunk, chunk),
          mesh=mesh,
      )
      if program is None:
        bar.set_postfix_str('compiling')
        t = time.perf_counter()
        before = sweep.compiled_programs()
        program = prog.compile()
        timing['compile_s'] += time.perf_counter() - t
        reused = sweep.compiled_programs() == before
        log(
            f'{desc or "trials"}: '
            + ('reused the compiled program' if reused else 'compiled')
            + f' in {timing["compile_s"]:.1f} s '
            f'({mesh.devices.size} {jax.default_backend()} device(s))'
        )
        bar.set_postfix_str('')
      t = time.perf_counter()
      res = prog.with_executable(program).gathered()
      timing['run_s'] += time.perf_counter() - t
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
  """Runs or resumes ``spec`` in ``workdir``; returns the summary dict.

  Inputs are validated before anything is written; a run that fails
  before saving a chunk removes the ``workdir`` it made (an existing one
  is left as it was, apart from files it rewrote).
  """
  workdir = pathlib.Path(workdir)
  # The outermost folder this run would make (None: workdir exists).
  made = None
  for folder in (workdir, *workdir.absolute().parents):
    if folder.exists():
      break
    made = folder
  try:
    return _run(spec, workdir, progress=progress, plots=plots, log=log)
  except BaseException:
    if (
        made is not None
        and made.is_dir()
        and not any((workdir / 'chunks').glob('chunk_*.npz'))
    ):
      shutil.rmtree(made, ignore_errors=True)
    raise


def _run(spec, workdir, *, progress, plots, log):
  resumed = check_config(workdir, spec)
  t0 = time.time()
  ds, data, note = load_routing_data(spec)
  estimators = select_estimators(spec)
  cfg = spec.protocol_config()
  grids, _ = protocol.prepare(
      data, estimators, cfg, grid_overrides(spec, estimators)
  )
  splits = all_splits(spec, ds, data)
  if splits.train_idx.shape[0] != spec.num_trials:
    raise ValueError(
        f'--splits {spec.splits}: {splits.train_idx.shape[0]} trials, but '
        f'--trials is {spec.num_trials}.'
    )
  log(
      f'{ds.name}: {ds.num_prompts} prompts x {ds.num_llms} LLMs, '
      f'{spec.num_trials} trials'
      + (' (resuming)' if resumed else '')
  )
  workdir.mkdir(parents=True, exist_ok=True)
  chunks.write_json(workdir / 'config.json', spec.to_json())
  chunks.write_json(workdir / 'splits.json', splits_file.to_json(splits, ds))
  timing = {'load_s': time.time() - t0, 'compile_s': 0.0, 'run_s': 0.0}
  result, computed = run_trials(
      spec,
      workdir,
      data,
      estimators,
      grids,
      splits,
      progress=progress,
      desc=ds.name,
      timing=timing,
      log=log,
  )
  out = report.build_summary(result, spec, ds, grids, note)
  out['split'].update(
      train_prompts=int(splits.train_idx.shape[1]),
      val_prompts=int(splits.val_idx.shape[1]),
      test_prompts=int(splits.test_idx.shape[1]),
      test_llms=int(np.asarray(splits.test_llm_m[0]).sum()),
      train_llms=int(np.asarray(splits.train_llm_m[0]).sum()),
  )
  out['splits_file'] = spec.splits or 'splits.json (drawn from the seed)'
  dedup = ds.provenance.get('dedup', {})
  out['dedup'] = {
      k: dedup[k]
      for k in ('policy', 'rows', 'kept', 'dropped', 'duplicate_text_rows')
      if k in dedup
  }
  out['chunks_computed_this_run'] = computed
  out['seconds_this_run'] = round(time.time() - t0, 1)
  out['timing'] = {
      k: round(v, 2) if isinstance(v, float) else v for k, v in timing.items()
  }
  out['timing']['backend'] = jax.default_backend()
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
