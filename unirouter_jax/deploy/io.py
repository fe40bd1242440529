"""A router and the outside world: datasets, prompt texts, disk.

* :func:`fit_from_dataset` fits a :class:`~unirouter_jax.deploy.state.Router` on a
  :class:`~unirouter_jax.data.Dataset` (:mod:`unirouter_jax.deploy.fit_dataset`,
  re-exported here): probe set, held-out calibration prompts, K-means, the
  cluster map, and K, beta and shrinkage selected by validation Area.
* :func:`route_texts` embeds prompts with the router's encoder, refusing an
  encoder whose id or weights hash differs from the one the router was fitted
  with (embeddings of another encoder live in another space).
* :func:`save_router` / :func:`load_router`: arrays through
  :mod:`unirouter_jax.deploy.checkpointing` (orbax, atomic: temp dir + rename) and a
  JSON manifest with names, costs, probe ids and texts, encoder id and
  weights hash, the cluster map's kind (``cluster_map``; absent = K-means,
  as routers saved before maps) and the library version; the map's arrays
  (soft ``beta``, a learned map's variables) and the held-out calibration
  prompts' embeddings (when given) travel as more arrays
  (:func:`load_deployed` reads them back).

Encoders are callables ``texts -> [n, d]``; their identity is read from the
attributes ``encoder_id`` and ``encoder_hash`` when present, or passed
explicitly. ``encoder=None`` means the bundled MiniLM encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from unirouter_jax.deploy import cluster_map as maps
from unirouter_jax.deploy import heldout, route_records
from unirouter_jax.deploy import router as router_lib
from unirouter_jax.deploy.fit_dataset import (  # noqa: F401 (re-exported)
    default_probe_size,
    fit_from_dataset,
)

FORMAT = 'unirouter_jax.router'  # the on-disk format's name (stable)
# Version 2 adds a soft or learned cluster map; a K-means router is still
# written as version 1 (what earlier libraries read), so that a library
# without maps refuses a router it would route as K-means.
FORMAT_VERSION = 2
Router = router_lib.Router
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


_CALIB = 'calib_emb_cd'  # the held-out prompts' embeddings, when kept


def manifest(
    router: Router, calib: heldout.CalibrationSet | None = None
) -> dict:
  """The JSON manifest of a router (everything static, plus costs)."""
  cmap = maps.of(router)
  arrays = _flat(_tree(router, calib))
  return {
      'format': FORMAT,
      'format_version': 1 if maps.kind_of(cmap) == 'kmeans' else 2,
      'library_version': metadata.version('unirouter_jax'),
      'llm_names': list(router.llm_names),
      'cost_m': [route_records.clean(c) for c in np.asarray(router.cost_m)],
      'shrinkage': float(router.shrinkage),
      'num_clusters': router.num_clusters,
      'encoder_id': router.encoder_id,
      'encoder_hash': router.encoder_hash,
      'probe_ids': list(router.probe_ids),
      'probe_texts': list(router.probe_texts),
      # Absent from routers saved before maps (read as K-means).
      'cluster_map': maps.describe(cmap),
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


def _tree(router: Router, calib) -> dict:
  """The arrays saved: the router's, its map's, the held-out prompts'."""
  tree = {name: getattr(router, name) for name in _ARRAYS}
  tree.update(maps.saved_arrays(maps.of(router)))
  if calib is not None:
    tree[_CALIB] = calib.emb_cd
  return tree


def _flat(tree: dict) -> dict:
  """``{'a/b/c': leaf}`` of a nested dict (a learned map's variables)."""
  return traverse_util.flatten_dict(tree, sep='/')


def save_router(
    directory, router: Router, calibration: heldout.CalibrationSet | None = None
) -> None:
  """Writes ``router`` (its map, and its held-out calibration prompts, if
  given) to ``directory`` atomically (see checkpointing)."""
  from unirouter_jax.deploy import checkpointing  # noqa: PLC0415 (orbax)

  heldout.check(router, calibration)
  tree = _tree(router, calibration)
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
  abstract = traverse_util.unflatten_dict(
      {
          name: jax.ShapeDtypeStruct(tuple(shape), np.dtype(dtype))
          for name, (shape, dtype) in man['arrays'].items()
      },
      sep='/',
  )
  arrays = checkpointing.restore(directory, abstract)
  cmap = maps.from_saved(man.get('cluster_map'), arrays, str(directory))
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
      cluster_map=cmap,
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
