"""The prompt side of a deployed router: a pluggable cluster map ``Phi``.

A router estimates the error of LLM ``m`` on prompt ``x`` as
``gamma(x, m) = Phi(x)^T psi[:, m]`` (method.md 2), with ``Phi(x)`` in the
K-simplex over the router's clusters. Three maps:

* ``'kmeans'`` (method.md 2.1): the one-hot of the nearest centroid. Routing
  gathers ``psi_km[k]`` (no product), so the results are those of the
  K-means-only router before maps existed.
* ``'soft'``: soft k-means responsibilities
  ``softmax_k(-beta * |x - c_k|^2)`` at an inverse temperature ``beta``
  (:func:`unirouter_jax.core.kmeans.responsibilities`).
* ``'learned'`` (method.md 2.2): UniRoute's LearnedMap
  ``softmax(f_theta(x))``, an MLP or a linear map fitted by
  :func:`unirouter_jax.estimators.learned_map.fit_learned_map` on the
  fitting LLMs' labels of the training prompts, with those LLMs' ``psi``
  from the probe set held fixed (:func:`fit_learned`).

``psi`` of every LLM comes from its probe labels weighted by
:func:`psi_weights` of the probe prompts, as the protocol's estimators
compute it (``estimators/builtin.py``): the one-hot of the nearest centroid
for ``'kmeans'`` and for ``'learned'`` (method.md 2.2: "same clusters and
same Psi"; ``_learned_llm_fit``), the responsibilities for ``'soft'``
(``_soft_llm_fit``). The map never depends on an LLM added later, so adding
one only appends a column of ``psi``.

A :class:`ClusterMap` is a frozen pytree: ``beta`` and the flax variables
are leaves, the kind and the network's shape are static.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct, traverse_util

from unirouter_jax.core import kmeans, psi, routing
from unirouter_jax.core.structs import Clustering
from unirouter_jax.estimators import learned_map

Array = jax.Array

KINDS = ('kmeans', 'soft', 'learned')
# [project choice] soft k-means: beta candidates of the selection (those of
# estimators.builtin.uniroute_soft_kmeans), and the default when not
# selected (its fixed grid).
BETAS = (4.0, 16.0, 64.0, 256.0)
DEFAULT_BETA = 16.0
# The paper's LearnedMap settings (method.md 2.2).
EPOCHS = 5
HIDDEN = 128
BATCH_SIZE = 64


@struct.dataclass
class ClusterMap:
  """A router's cluster map ``Phi``.

  Attributes:
    beta: ``[]`` inverse temperature of ``'soft'`` (0 for the other kinds).
    variables: flax variables of the ``'learned'`` network
      (``{'params': ..., 'batch_stats': ...}``; ``{}`` for the other kinds).
    kind: ``'kmeans'``, ``'soft'`` or ``'learned'`` (static).
    arch: ``'mlp'`` or ``'linear'`` for ``'learned'``, else ``''`` (static).
    hidden: MLP width for ``'learned'``, else 0 (static).
  """

  beta: Array
  variables: dict
  kind: str = struct.field(pytree_node=False, default='kmeans')
  arch: str = struct.field(pytree_node=False, default='')
  hidden: int = struct.field(pytree_node=False, default=0)


def check_kind(kind, arg: str = 'cluster_map') -> str:
  """``kind`` if it names a map; ValueError otherwise."""
  if kind not in KINDS:
    raise ValueError(f'{arg}: expected one of {list(KINDS)}, got {kind!r}.')
  return kind


def check_beta(beta, arg: str = 'beta') -> float:
  try:
    b = float(beta)
  except (TypeError, ValueError):
    b = float('nan')
  if not (np.isfinite(b) and b >= 0):
    raise ValueError(f'{arg}: expected a finite value >= 0, got {beta!r}.')
  return b


def check_learned(arch, epochs) -> None:
  """ValueError unless ``arch`` and ``epochs`` can fit a learned map."""
  if arch not in learned_map.ARCHS:
    raise ValueError(
        f'arch: expected one of {list(learned_map.ARCHS)}, got {arch!r}.'
    )
  if not isinstance(epochs, (int, np.integer)) or epochs < 1:
    raise ValueError(f'epochs: expected an int >= 1, got {epochs!r}.')


def kmeans_map() -> ClusterMap:
  """The nearest-centroid map (method.md 2.1)."""
  return ClusterMap(beta=jnp.zeros((), jnp.float32), variables={})


def soft_map(beta: float) -> ClusterMap:
  """Soft k-means responsibilities at inverse temperature ``beta`` >= 0."""
  return ClusterMap(
      beta=jnp.asarray(check_beta(beta), jnp.float32),
      variables={},
      kind='soft',
  )


def of(router) -> ClusterMap | None:
  """The router's map; None (read as ``'kmeans'``) for a core Router."""
  return getattr(router, 'cluster_map', None)


def kind_of(cmap: ClusterMap | None) -> str:
  """The kind of ``cmap`` (None is ``'kmeans'``)."""
  return 'kmeans' if cmap is None else cmap.kind


def _learned_params(cmap: ClusterMap) -> learned_map.LearnedMapParams:
  return learned_map.LearnedMapParams(
      variables=cmap.variables, loss_t=jnp.zeros((0,))
  )


def phi(cmap: ClusterMap | None, clustering: Clustering, emb_qd) -> Array:
  """``[q, k]`` routing weights ``Phi(x)`` (0 on padded clusters)."""
  kind = kind_of(cmap)
  if kind == 'kmeans':
    return kmeans.one_hot_assign(emb_qd, clustering)
  if kind == 'soft':
    return kmeans.responsibilities(
        emb_qd, clustering, cmap.beta.astype(emb_qd.dtype)
    )
  return learned_map.cluster_map(
      _learned_params(cmap),
      emb_qd,
      clustering.cluster_mask_k,
      arch=cmap.arch,
      hidden=cmap.hidden,
  )


def psi_weights(
    cmap: ClusterMap | None, clustering: Clustering, emb_pd
) -> Array:
  """``[p, k]`` weights of the probe prompts in ``psi`` (module docstring):
  one-hot for ``'kmeans'`` and ``'learned'``, responsibilities for
  ``'soft'``."""
  if kind_of(cmap) == 'soft':
    return phi(cmap, clustering, emb_pd)
  return kmeans.one_hot_assign(emb_pd, clustering)


def gamma(
    cmap: ClusterMap | None, clustering: Clustering, psi_km, emb_qd
) -> tuple[Array, Array]:
  """``([q, m] gamma, [q] cluster)``; the cluster is the nearest centroid
  (``'kmeans'``) or the heaviest weight of ``Phi(x)`` (ties: the lowest k).

  ``'kmeans'`` gathers the rows of ``psi_km`` (exact); the other maps take
  the product ``Phi psi`` at full float32 precision.
  """
  if kind_of(cmap) == 'kmeans':
    cluster_q = kmeans.assign(emb_qd, clustering)
    return jnp.take(psi_km, cluster_q, axis=0), cluster_q
  phi_qk = phi(cmap, clustering, emb_qd)
  cluster_q = jnp.argmax(phi_qk, axis=-1).astype(jnp.int32)
  return routing.uniroute_gamma(phi_qk, psi_km), cluster_q


@functools.partial(
    jax.jit, static_argnames=('arch', 'epochs', 'hidden', 'batch_size')
)
def _fit_learned(
    key,
    clustering,
    emb_nd,
    train_idx,
    error_nm,
    visible_nm,
    probe_emb_pd,
    probe_error_pm,
    probe_visible_pm,
    lr,
    *,
    arch,
    epochs,
    hidden,
    batch_size,
):
  # psi of the fitting LLMs while the map is fitted: from the probe set
  # (method.md 2.2's default, as builtin._learned_llm_fit), unshrunk.
  psi_km = psi.cluster_features(
      probe_emb_pd, clustering, probe_error_pm, probe_visible_pm
  ).psi_km
  m = error_nm.shape[1]
  return learned_map.fit_learned_map(
      key,
      emb_nd,
      train_idx,
      error_nm,
      visible_nm,
      jnp.ones((m,), bool),
      psi_km,
      clustering.cluster_mask_k,
      lr,
      arch=arch,
      epochs=epochs,
      batch_size=batch_size,
      hidden=hidden,
  )


def fit_learned(
    key,
    clustering: Clustering,
    emb_nd,
    train_idx,
    error_nm,
    visible_nm,
    probe_emb_pd,
    probe_error_pm,
    probe_visible_pm,
    *,
    arch: str = 'mlp',
    epochs: int = EPOCHS,
    hidden: int = HIDDEN,
    batch_size: int = BATCH_SIZE,
    lr: float = learned_map.LEARNING_RATE,
) -> ClusterMap:
  """The LearnedMap of the fitting LLMs (method.md 2.2).

  Every LLM column given is a fitting LLM: the caller passes the columns of
  the LLMs that train the map (the same arrays, so the same map, whatever
  other LLMs the router holds).

  Args:
    key: PRNG key (initialisation and minibatch order).
    clustering: the router's clusters (their ``psi`` is held fixed).
    emb_nd: ``[n, d]`` prompt embeddings.
    train_idx: ``[n_train]`` rows of ``emb_nd`` the map is fitted on.
    error_nm: ``[n, m]`` errors ``1 - quality`` (any value where not visible).
    visible_nm: ``[n, m]`` bool, the labels that count.
    probe_emb_pd: ``[p, d]`` probe prompts; ``psi`` of the fitting LLMs.
    probe_error_pm, probe_visible_pm: ``[p, m]`` their probe labels.
    arch: ``'mlp'`` (the paper's numbers) or ``'linear'``.
    epochs: passes over the training prompts (paper: 5).
    hidden: MLP width.
    batch_size: Adam minibatch size.
    lr: Adam learning rate.
  """
  check_learned(arch, epochs)
  params = _fit_learned(
      key,
      clustering,
      jnp.asarray(emb_nd, jnp.float32),
      jnp.asarray(train_idx, jnp.int32),
      jnp.asarray(error_nm, jnp.float32),
      jnp.asarray(visible_nm, bool),
      jnp.asarray(probe_emb_pd, jnp.float32),
      jnp.asarray(probe_error_pm, jnp.float32),
      jnp.asarray(probe_visible_pm, bool),
      jnp.asarray(lr, jnp.float32),
      arch=arch,
      epochs=int(epochs),
      hidden=int(hidden),
      batch_size=int(batch_size),
  )
  return ClusterMap(
      beta=jnp.zeros((), jnp.float32),
      variables=_with_stats(params.variables),
      kind='learned',
      arch=arch,
      hidden=int(hidden),
  )


def trimmed(cmap: ClusterMap, real_k) -> ClusterMap:
  """``cmap`` with only the clusters ``real_k`` (``[k]`` bool, real first)."""
  if kind_of(cmap) != 'learned':
    return cmap
  k = int(np.asarray(real_k).sum())
  flat = traverse_util.flatten_dict(cmap.variables)
  last = 'Dense_2' if cmap.arch == 'mlp' else 'Dense_0'
  flat = {
      path: x[..., :k] if path[1] == last else x for path, x in flat.items()
  }
  return cmap.replace(variables=_with_stats(traverse_util.unflatten_dict(flat)))


def _with_stats(variables: dict) -> dict:
  """``variables`` with a ``batch_stats`` collection, empty for a linear map
  (flattening drops an empty one; one pytree structure for every path)."""
  return {'batch_stats': {}, **variables}


# On disk (io.save_router): the manifest's ``cluster_map`` entry states the
# kind (and beta, arch, width); the arrays travel in the orbax tree.
_BETA = 'map_beta'
_VARIABLES = 'map_variables'


def saved_arrays(cmap: ClusterMap | None) -> dict:
  """The map's arrays to store beside the router's (none for K-means)."""
  kind = kind_of(cmap)
  if kind == 'soft':
    return {_BETA: cmap.beta}
  if kind == 'learned':  # without empty collections (the manifest lists
    # leaves only, so orbax's tree must have none either)
    flat = traverse_util.flatten_dict(cmap.variables)
    return {_VARIABLES: traverse_util.unflatten_dict(flat)}
  return {}


def describe(cmap: ClusterMap | None) -> dict:
  """The manifest entry of the map (JSON)."""
  kind = kind_of(cmap)
  out = {'kind': kind}
  if kind == 'soft':  # its shortest float32 decimal (0.05, not 0.0500...07)
    out['beta'] = float(
        np.format_float_positional(np.float32(cmap.beta), unique=True)
    )
  if kind == 'learned':
    out.update(arch=cmap.arch, hidden=cmap.hidden)
  return out


def from_saved(entry: dict | None, arrays: dict, source: str) -> ClusterMap:
  """The map of a manifest entry (None: a router saved before maps, read
  as K-means) and the restored arrays; ValueError naming ``source``."""
  entry = {'kind': 'kmeans'} if entry is None else entry
  kind = entry.get('kind') if isinstance(entry, dict) else None
  if kind not in KINDS:
    raise ValueError(
        f'{source}: cluster_map: unknown kind {kind!r} (expected one of '
        f'{list(KINDS)}).'
    )
  want = {'kmeans': set(), 'soft': {_BETA}, 'learned': {_VARIABLES}}[kind]
  have = {name for name in (_BETA, _VARIABLES) if name in arrays}
  if have != want:
    raise ValueError(f'{source}: manifest and arrays disagree.')
  if kind == 'kmeans':
    return kmeans_map()
  if kind == 'soft':
    return soft_map(float(np.asarray(arrays[_BETA])))
  arch, hidden = entry.get('arch'), entry.get('hidden')
  if arch not in learned_map.ARCHS or not isinstance(hidden, int):
    raise ValueError(f'{source}: cluster_map: bad arch or hidden width.')
  return ClusterMap(
      beta=jnp.zeros((), jnp.float32),
      variables=jax.tree.map(jnp.asarray, _with_stats(arrays[_VARIABLES])),
      kind='learned',
      arch=arch,
      hidden=hidden,
  )
