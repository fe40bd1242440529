"""Padded splits: one compiled protocol for several probe-set sizes.

A protocol program is compiled for fixed shapes: the sizes of the validation
and test sets, and each method's hyperparameter grid (its values are part of
the program). Runs that differ only in ``val_fraction`` (the validation-size
study, method.md 3) therefore compiled once per N_val. With a
:class:`Padding` they share one program:

* ``val_idx`` is padded to ``val_prompts`` entries with test prompts, whose
  labels no estimator sees in the test view, and ``val_mask`` marks the real
  ones; ``test_idx`` is padded to ``test_prompts`` with validation prompts,
  left out of every score by ``test_mask`` (``evaluation.views``).
* Each method's grid becomes per-trial data (``Split.hp_grids``): its values
  padded to the largest grid of the runs by repeating the last one, with a
  ``'_valid'`` mask that selection never picks past. ``pad`` (K, k bounds)
  is the largest of the runs.

A padded run gives the unpadded run's results up to float rounding
(``tests/evaluation/test_padding.py`` checks it trial by trial); the results
are returned with each method's own grid size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from unirouter_jax.core.structs import Split, TrialResult

VALID = '_valid'


@dataclasses.dataclass(frozen=True)
class GridShape:
  """One method's grid in a padded program.

  Attributes:
    method: the method's name.
    names: its hyperparameter names.
    points: grid points every run is padded to.
    pad: the static size bound (``Estimator.pad``) of every run.
    key: every run's grid (frozen): methods with equal keys share their
      prompt side (one clustering per K) as in an unpadded run.
  """

  method: str
  names: tuple[str, ...]
  points: int
  pad: int
  key: tuple


@dataclasses.dataclass(frozen=True)
class Padding:
  """Static shapes shared by protocol runs (``ProtocolConfig.padding``).

  Attributes:
    val_prompts: validation prompts every run is padded to.
    test_prompts: test prompts every run is padded to.
    grids: one :class:`GridShape` per method.
  """

  val_prompts: int
  test_prompts: int
  grids: tuple[GridShape, ...]

  def shape(self, method: str) -> GridShape:
    for g in self.grids:
      if g.method == method:
        return g
    raise ValueError(
        f'padding: no grid for method {method!r} (it has '
        f'{[g.method for g in self.grids]}).'
    )


def _freeze(grid: Mapping[str, np.ndarray]) -> tuple:
  return tuple((k, tuple(np.asarray(v).tolist())) for k, v in grid.items())


def covering(runs: Sequence[tuple[Mapping, Mapping, int, int]]) -> Padding:
  """The smallest :class:`Padding` that holds every run.

  Args:
    runs: per run ``(grids, pads, n_val, n_test)``, as
      ``protocol.prepare`` and ``protocol.split_sizes`` give them.

  Raises:
    ValueError: when the runs' methods or hyperparameter names differ.
  """
  if not runs:
    raise ValueError('runs: expected at least one run, got none.')
  methods = list(runs[0][0])
  shapes = []
  for name in methods:
    names = tuple(runs[0][0][name])
    for grids, _, _, _ in runs:
      if name not in grids or tuple(grids[name]) != names:
        raise ValueError(
            f'{name}: every run needs the same hyperparameters ({names}).'
        )
    shapes.append(
        GridShape(
            method=name,
            names=names,
            points=max(_size(g[name]) for g, _, _, _ in runs),
            pad=max(int(p[name]) for _, p, _, _ in runs),
            key=tuple(_freeze(g[name]) for g, _, _, _ in runs),
        )
    )
  return Padding(
      val_prompts=max(r[2] for r in runs),
      test_prompts=max(r[3] for r in runs),
      grids=tuple(shapes),
  )


def _size(grid) -> int:
  return len(next(iter(grid.values()))) if grid else 1


def check(padding: Padding, grids, pads, n_val: int, n_test: int) -> dict:
  """The padded ``pads``; ValueError naming what does not fit."""
  for what, size, room in (
      ('validation', n_val, padding.val_prompts),
      ('test', n_test, padding.test_prompts),
  ):
    if size > room:
      raise ValueError(
          f'padding: {size} {what} prompts, but the padding holds {room}.'
      )
  out = {}
  for name, grid in grids.items():
    shape = padding.shape(name)
    if tuple(grid) != shape.names or _size(grid) > shape.points:
      raise ValueError(
          f'padding: {name} grid {dict(_freeze(grid))} does not fit '
          f'{shape.points} points of {shape.names}.'
      )
    if pads[name] > shape.pad:
      raise ValueError(f'padding: {name} needs pad {pads[name]} > {shape.pad}.')
    out[name] = shape.pad
  return out


def _extend(idx_sn, other_sn, size):
  """``[s, size]``: ``idx_sn`` then entries of ``other_sn`` (cyclically)."""
  extra = size - idx_sn.shape[1]
  if extra <= 0:
    return idx_sn, jnp.ones(idx_sn.shape, bool)
  fill = other_sn[:, np.arange(extra) % other_sn.shape[1]]
  mask = np.arange(size) < idx_sn.shape[1]
  return (
      jnp.concatenate([idx_sn, fill], axis=1),
      jnp.broadcast_to(jnp.asarray(mask), (idx_sn.shape[0], size)),
  )


def pad_splits(splits: Split, grids, padding: Padding) -> Split:
  """Stacked ``splits`` (leading ``s`` axis) padded to ``padding``, with
  every method's grid as per-trial ``hp_grids``."""
  if splits.val_mask is not None or splits.test_mask is not None:
    raise ValueError('splits: already padded.')
  s = splits.train_idx.shape[0]
  val_idx, val_mask = _extend(
      splits.val_idx, splits.test_idx, padding.val_prompts
  )
  test_idx, test_mask = _extend(
      splits.test_idx, splits.val_idx, padding.test_prompts
  )
  hp_grids = {}
  for name, grid in grids.items():
    shape = padding.shape(name)
    size = _size(grid)
    rows = np.minimum(np.arange(shape.points), size - 1)
    values = {k: np.asarray(v)[rows] for k, v in grid.items()}
    values[VALID] = np.arange(shape.points) < size
    hp_grids[name] = {
        k: jnp.broadcast_to(jnp.asarray(v), (s,) + v.shape)
        for k, v in values.items()
    }
  return splits.replace(
      val_idx=val_idx,
      test_idx=test_idx,
      val_mask=val_mask,
      test_mask=test_mask,
      hp_grids=hp_grids,
  )


def unpad(result: TrialResult, grids) -> TrialResult:
  """Each method's per-grid-point Areas cut back to its own grid."""

  def cut(name, res):
    g = _size(grids[name])
    return res.replace(
        test_area_g=res.test_area_g[..., :g], val_area_g=res.val_area_g[..., :g]
    )

  return result.replace(
      methods={name: cut(name, r) for name, r in result.methods.items()}
  )


def grid_of(split: Split, name: str):
  """``(grid, valid)`` of ``name`` in a padded trial's split."""
  grid = dict(split.hp_grids[name])
  valid = grid.pop(VALID)
  return grid, valid
