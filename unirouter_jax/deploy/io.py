"""A router and the outside world: datasets, prompt texts, disk.

* :func:`fit_from_dataset` fits a :class:`~unirouter_jax.core.structs.Router` on a
  :class:`~unirouter_jax.data.Dataset`: a random probe set, optionally a
  random held-out calibration set (:mod:`unirouter_jax.deploy.heldout`),
  K-means on the other prompts, and (optionally) K and the shrinkage
  strength selected by validation Area on the non-probe prompts (their
  labels never enter psi); costs from the dataset or a table ``llm -> cost``.
* :func:`route_texts` embeds prompts with the router's encoder, refusing an
  encoder whose id or weights hash differs from the one the router was fitted
  with (embeddings of another encoder live in another space).
* :func:`save_router` / :func:`load_router`: arrays through
  :mod:`unirouter_jax.deploy.checkpointing` (orbax, atomic: temp dir + rename) and a
  JSON manifest with names, costs, probe ids and texts, encoder id and
  weights hash, and the library version; the held-out calibration prompts'
  embeddings (when given) travel as one more array (:func:`load_deployed`
  reads them back).

Encoders are callables ``texts -> [n, d]``; their identity is read from the
attributes ``encoder_id`` and ``encoder_hash`` when present, or passed
explicitly. ``encoder=None`` means the bundled MiniLM encoder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np

from unirouter_jax.core import kmeans
from unirouter_jax.core.structs import Router, RoutingData, Split
from unirouter_jax.deploy import calibration, cost_table, heldout, route_records
from unirouter_jax.deploy import router as router_lib
from unirouter_jax.estimators import builtin as methods
from unirouter_jax.evaluation import method_points

FORMAT = 'unirouter_jax.router'  # the on-disk format's name (stable)
FORMAT_VERSION = 1
_ARRAYS = (
    'centroids_kd',
    'cluster_mask_k',
    'probe_emb_pd',
    'probe_error_pm',
    'probe_visible_pm',
    'cost_m',
    'shrinkage',
    'psi_km',
    'count_km',
    'se_km',
    'global_m',
)


def default_encoder(policy: str | None = None):
  """The bundled all-MiniLM-L6-v2 encoder (loads its weights once)."""
  from unirouter_jax import encoder as enc  # noqa: PLC0415 (heavy import)

  return enc.load_minilm(policy=policy or enc.DEFAULT_POLICY)


def encoder_identity(encoder, encoder_id=None, encoder_hash=None):
  """``(callable, id, hash)`` of ``encoder`` (None = the bundled MiniLM).

  A MiniLM encoder is identified as ``'<model id>:<truncation policy>'`` with
  the sha256 of its weights; any other callable by its ``encoder_id`` and
  ``encoder_hash`` attributes, or by the arguments.
  """
  if encoder is None:
    encoder = default_encoder()
  if not callable(encoder):
    raise ValueError(
        'encoder: expected a callable texts -> [n, d], got '
        f'{type(encoder).__name__}.'
    )
  eid = encoder_id or getattr(encoder, 'encoder_id', None)
  if not eid and getattr(encoder, 'model_id', None):
    eid = f'{encoder.model_id}:{getattr(encoder, "policy", "")}'
  if not eid:
    raise ValueError(
        'encoder_id: cannot tell which encoder this callable is; pass '
        'encoder_id= (and encoder_hash=) or give it an `encoder_id` attribute.'
    )
  ehash = (
      encoder_hash
      or getattr(encoder, 'encoder_hash', '')
      or getattr(encoder, 'weights_sha256', '')
      or ''
  )
  return encoder, str(eid), str(ehash)


def check_encoder(router: Router, encoder_id: str, encoder_hash: str = ''):
  """ValueError unless the encoder is the one the router was fitted with."""
  if encoder_id != router.encoder_id or (
      encoder_hash
      and router.encoder_hash
      and encoder_hash != router.encoder_hash
  ):
    raise ValueError(
        f'encoder: the router was fitted with encoder {router.encoder_id!r} '
        f'(weights {router.encoder_hash[:12] or "unknown"}), but the given '
        f'encoder is {encoder_id!r} (weights {encoder_hash[:12] or "unknown"})'
        '; embeddings of different encoders are not comparable. Refit the '
        'router or use its encoder.'
    )


def embed_texts(
    router: Router,
    texts: Sequence[str],
    *,
    encoder=None,
    encoder_id=None,
    encoder_hash=None,
) -> jax.Array:
  """``[q, d]`` embeddings of ``texts`` by the router's encoder."""
  if isinstance(texts, str):
    texts = [texts]
  texts = list(texts)
  if not texts:
    raise ValueError('texts: expected at least one prompt, got none.')
  fn, eid, ehash = encoder_identity(encoder, encoder_id, encoder_hash)
  check_encoder(router, eid, ehash)
  return router_lib.check_embeddings(router, np.asarray(fn(texts)))


def route_texts(
    router: Router,
    texts: Sequence[str],
    *,
    encoder=None,
    encoder_id=None,
    encoder_hash=None,
    **route_kw,
):
  """:func:`unirouter_jax.deploy.router.route` from prompt texts."""
  emb = embed_texts(
      router,
      texts,
      encoder=encoder,
      encoder_id=encoder_id,
      encoder_hash=encoder_hash,
  )
  return router_lib.route(router, emb, **route_kw)


def default_probe_size(n: int) -> int:
  """10% of the prompts, between 20 and 500 (and at most half of them)."""
  return int(min(max(20, round(0.1 * n)), 500, n // 2))


def fit_from_dataset(
    key,
    ds,
    emb_nd,
    *,
    probe_size: int | None = None,
    k: int | None = None,
    shrinkage: float | None = 0.0,
    strengths: Sequence[float] = calibration.DEFAULT_STRENGTHS,
    encoder_id: str = '',
    encoder_hash: str = '',
    n_init: int = 3,
    calib_size: int | None = 0,
    costs: Mapping[str, float] | None = None,
) -> tuple[Router, dict]:
  """Fits a router on every LLM of ``ds``.

  Args:
    key: PRNG key (probe set and K-means).
    ds: a :class:`unirouter_jax.data.Dataset`.
    emb_nd: ``[n, d]`` embeddings of ``ds.prompts``.
    probe_size: probe prompts (default :func:`default_probe_size`).
    k: clusters; None selects K on the grid of method.md 2.4.
    shrinkage: pseudo-count; None selects it from ``strengths``.
    strengths: shrinkage candidates when ``shrinkage`` is None.
    encoder_id, encoder_hash: identity of the encoder of ``emb_nd``.
    n_init: K-means restarts.
    calib_size: held-out calibration prompts (None:
      :func:`heldout.default_size`; 0: none, the earlier behaviour), drawn
      after the probe set and never clustered.
    costs: optional ``{llm: cost}`` replacing the dataset's costs (every
      LLM of ``ds`` must have one; see :mod:`cost_table`).

  Returns:
    ``(router, info)``; ``info`` holds the split sizes and, when anything was
    selected, the validation Area of every (k, strength) candidate; with
    ``calib_size`` > 0, ``info['calibration']`` is the
    :class:`heldout.CalibrationSet` to pass to :func:`save_router`.
  """
  emb = np.asarray(emb_nd, np.float32)
  n = ds.num_prompts
  if emb.shape[:1] != (n,) or emb.ndim != 2:
    raise ValueError(f'emb_nd: expected [{n}, d], got {emb.shape}.')
  p = default_probe_size(n) if probe_size is None else int(probe_size)
  if not 1 <= p < n:
    raise ValueError(f'probe_size: expected 1..{n - 1}, got {probe_size!r}.')
  n_cal = heldout.default_size(n, p) if calib_size is None else int(calib_size)
  if not 0 <= n_cal <= n - p - 1:
    raise ValueError(
        f'calib_size: expected 0..{n - p - 1} (the prompts left after '
        f'{p} probe prompts, less one to cluster), got {calib_size!r}.'
    )
  p_key, k_key = jax.random.split(key)
  perm = np.asarray(jax.random.permutation(p_key, n))
  probe_idx, train_idx = np.sort(perm[:p]), np.sort(perm[p + n_cal :])
  mask = np.asarray(ds.label_mask_nm, bool)
  cost = np.asarray(ds.cost_nm, np.float64)
  if costs is not None:  # the table's costs for every prompt and LLM
    cost = np.broadcast_to(
        cost_table.cost_vector(ds.llm_names, costs).astype(np.float64),
        cost.shape,
    )
  cost_m = np.where(mask, cost, 0).sum(0) / np.maximum(mask.sum(0), 1)
  ks = np.asarray(
      [k] if k is not None else methods.kmeans_k_grid(train_idx.size, p),
      np.int32,
  )
  ss = [shrinkage] if shrinkage is not None else list(strengths)
  if k is not None and not 1 <= k <= train_idx.size:
    raise ValueError(f'k: expected 1..{train_idx.size}, got {k!r}.')
  weight_n = np.zeros((n,), np.float32)
  weight_n[train_idx] = 1.0
  common = dict(
      probe_ids=[str(x) for x in ds.prompt_ids[probe_idx]],
      probe_texts=[str(x) for x in ds.prompts[probe_idx]],
      encoder_id=encoder_id,
      encoder_hash=encoder_hash,
  )
  args = (
      emb[probe_idx],
      np.asarray(ds.quality_nm)[probe_idx],
      mask[probe_idx],
      cost_m,
      ds.llm_names,
  )
  info = {
      'num_probe': p,
      'num_calib': n_cal,
      'num_train': int(train_idx.size),
      'k_candidates': ks.tolist(),
      'strength_candidates': ss,
  }
  best_k = 0
  if len(ks) > 1:
    # K by the protocol's rule (method.md 2.4): psi of every LLM from the
    # training prompts, the probe prompts routed by it; never in-sample.
    data = RoutingData.create(
        emb,
        np.asarray(ds.quality_nm),
        np.asarray(cost, np.float32),
        mask,
        ds.llm_names,
    )
    all_m = jnp.ones((ds.num_llms,), bool)
    split = Split(
        train_idx=jnp.asarray(train_idx),
        val_idx=jnp.asarray(probe_idx),
        test_idx=jnp.asarray(probe_idx),
        train_llm_m=all_m,
        test_llm_m=all_m,
        key=k_key,
    )
    best_k, area_k = method_points.select_hparams(
        k_key, data, split, methods.uniroute_kmeans(n_init=n_init), {'k': ks}
    )
    info['val_area_k'] = area_k.tolist()
  # Only the selected K is clustered (as the protocol clusters it).
  c = kmeans.kmeans(
      k_key,
      jnp.asarray(emb),
      jnp.asarray(weight_n),
      int(ks[best_k]),
      k_max=int(ks.max()),
      n_init=n_init,
  )
  best = (best_k, ss[0])
  if len(ss) > 1:
    # Shrinkage: psi from the probe set, scored on the training prompts.
    r = router_lib.from_clustering(c, *args, trim=False, **common)
    _, area_s = calibration.select_shrinkage(
        r,
        emb[train_idx],
        np.asarray(ds.quality_nm)[train_idx],
        mask[train_idx],
        np.asarray(cost, np.float32)[train_idx],
        strengths=ss,
    )
    best = (best_k, ss[int(np.argmax(area_s))])
    info['val_area_s'] = area_s.tolist()
  router = router_lib.from_clustering(c, *args, shrinkage=best[1], **common)
  info.update(k=int(ks[best[0]]), shrinkage=float(best[1]))
  if n_cal:
    info['calibration'] = heldout.make(
        emb, ds.prompt_ids, np.sort(perm[p : p + n_cal])
    )
  return router, info


_CALIB = 'calib_emb_cd'  # the held-out prompts' embeddings, when kept


def manifest(
    router: Router, calib: heldout.CalibrationSet | None = None
) -> dict:
  """The JSON manifest of a router (everything static, plus costs)."""
  arrays = {name: getattr(router, name) for name in _ARRAYS}
  if calib is not None:
    arrays[_CALIB] = calib.emb_cd
  return {
      'format': FORMAT,
      'format_version': FORMAT_VERSION,
      'library_version': metadata.version('unirouter_jax'),
      'llm_names': list(router.llm_names),
      'cost_m': [route_records.clean(c) for c in np.asarray(router.cost_m)],
      'shrinkage': float(router.shrinkage),
      'num_clusters': router.num_clusters,
      'encoder_id': router.encoder_id,
      'encoder_hash': router.encoder_hash,
      'probe_ids': list(router.probe_ids),
      'probe_texts': list(router.probe_texts),
      # Absent from routers saved before held-out prompts were kept.
      **(
          {}
          if calib is None
          else {'calibration': {'prompt_ids': list(calib.prompt_ids)}}
      ),
      'arrays': {
          name: [list(np.shape(a)), str(a.dtype)] for name, a in arrays.items()
      },
  }


def save_router(
    directory, router: Router, calibration: heldout.CalibrationSet | None = None
) -> None:
  """Writes ``router`` (and its held-out calibration prompts, if given) to
  ``directory`` atomically (see checkpointing)."""
  from unirouter_jax.deploy import checkpointing  # noqa: PLC0415 (orbax)

  heldout.check(router, calibration)
  tree = {name: getattr(router, name) for name in _ARRAYS}
  if calibration is not None:
    tree[_CALIB] = calibration.emb_cd
  checkpointing.save(directory, tree, manifest=manifest(router, calibration))


def read_router_manifest(directory) -> dict:
  """The manifest of the router at ``directory`` (ValueError if none)."""
  from unirouter_jax.deploy import checkpointing  # noqa: PLC0415 (orbax)

  man = checkpointing.read_manifest(directory)
  if man.get('format') != FORMAT:
    raise ValueError(
        f'{directory}: not a unirouter router (manifest format '
        f'{man.get("format")!r}).'
    )
  if man.get('format_version', 0) > FORMAT_VERSION:
    raise ValueError(
        f'{directory}: router format {man["format_version"]} is newer than '
        f'this library supports ({FORMAT_VERSION}); upgrade unirouter_jax.'
    )
  return man


def load_router(
    directory, *, encoder_id: str | None = None, encoder_hash: str | None = None
) -> Router:
  """Reads a router written by :func:`save_router`.

  Args:
    directory: the router directory.
    encoder_id, encoder_hash: the encoder the caller will use; a router
      fitted with a different one fails with ValueError.
  """
  return load_deployed(
      directory, encoder_id=encoder_id, encoder_hash=encoder_hash
  )[0]


def load_deployed(
    directory, *, encoder_id: str | None = None, encoder_hash: str | None = None
) -> tuple[Router, heldout.CalibrationSet | None]:
  """``(router, held-out calibration prompts or None)`` at ``directory``.

  As :func:`load_router`; the calibration set is None for a router saved
  without one (before they were kept, or fitted with ``calib_size=0``).
  """
  from unirouter_jax.deploy import checkpointing  # noqa: PLC0415 (orbax)

  man = read_router_manifest(directory)
  if encoder_id is not None:
    stub = Router(
        *([None] * len(_ARRAYS)),
        encoder_id=man['encoder_id'],
        encoder_hash=man['encoder_hash'],
    )
    check_encoder(stub, encoder_id, encoder_hash or '')
  abstract = {
      name: jax.ShapeDtypeStruct(tuple(shape), np.dtype(dtype))
      for name, (shape, dtype) in man['arrays'].items()
  }
  arrays = checkpointing.restore(directory, abstract)
  m = len(man['llm_names'])
  calib_ids = man.get('calibration', {}).get('prompt_ids')
  if (
      arrays['cost_m'].shape != (m,)
      or len(man['probe_ids']) != arrays['probe_emb_pd'].shape[0]
      or (calib_ids is None) != (_CALIB not in arrays)
      or (calib_ids is not None and len(calib_ids) != arrays[_CALIB].shape[0])
  ):
    raise ValueError(f'{directory}: manifest and arrays disagree.')
  router = Router(
      **{name: jnp.asarray(arrays[name]) for name in _ARRAYS},
      llm_names=tuple(man['llm_names']),
      probe_ids=tuple(man['probe_ids']),
      probe_texts=tuple(man['probe_texts']),
      encoder_id=man['encoder_id'],
      encoder_hash=man['encoder_hash'],
  )
  calib = None
  if calib_ids is not None:
    calib = heldout.CalibrationSet(
        emb_cd=jnp.asarray(arrays[_CALIB]), prompt_ids=tuple(calib_ids)
    )
  return router, calib


def dumps_route(
    out, texts: Sequence[str] | None = None, *, top: int | None = None
) -> str:
  """JSON of a :class:`RouteOutput`: choice, cluster and every candidate
  (:func:`unirouter_jax.deploy.route_records.dumps_json`)."""
  return route_records.dumps_json(out, texts, top=top)
