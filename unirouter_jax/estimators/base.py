"""The estimator interface every router of the library implements.

An estimator turns one trial's visible labels into estimated errors
``gamma[q, m]`` of every LLM on query prompts. It is two pure functions:

* ``fit(key, inputs, hp, pad) -> params``: a pytree of fitted state.
  ``inputs`` is a :class:`TrialInputs` (below); ``hp`` maps hyperparameter
  names to *traced* scalars, so ``fit`` vmaps over a hyperparameter grid;
  ``pad`` is a static Python int, the largest value of the estimator's
  integer size hyperparameter in the grid (``k`` clusters, ``k``
  neighbours), so every grid point shares one compiled shape.
* ``gamma(params, emb_qd, inputs, pad) -> gamma_qm``: estimated errors
  ``[q, m]`` for query embeddings ``[q, d]``.

Optionally, ``fit`` may be a :class:`TwoStageFit` (still a plain callable):
a label-free prompt side and the rest. The protocol then fits the prompt
side once per trial and grid point and shares it between the selection and
test views, which differ only in their labels (K-means on the training
prompts is the same in both; only ``psi`` differs).

and, optionally, ``points(params, inputs, eval_set, pad) -> (cost_p,
quality_p, mask_p)`` for routers whose curve is known in closed form
(ZeroRouter), which then replaces the lambda sweep.

``hp_grid(n_train, n_val) -> {name: values}`` lists the hyperparameter
candidates; when it has more than one point, the protocol picks one per
trial on validation data with training LLMs only (method.md 2.4).

With ``fit_selected_only``, the test view is fitted at the selected grid
point only (for costly fits such as LearnedMap's; the result is the same,
only the test Area of the other candidates is not computed). With a
``selector`` (another estimator), the grid point is the one the selector's
selection view picks, and the estimator itself is fitted once, at that
point, in the test view (optionally, UniRoute LearnedMap takes K from
UniRoute K-means). The two must share the prompt side
(``TwoStageFit.prompt_fit``) for the clusters to be the same.

What an estimator may see is decided by the protocol, not by the estimator:
:class:`TrialInputs` zeroes and masks every label it must not use. A fair
estimator sees training LLMs on training prompts and every LLM on the
validation prompts (the probe set). A ``clairvoyant`` one (the MLP/MatFac
oracles of the paper) also sees test LLMs on training prompts. Test prompts'
labels never enter ``TrialInputs``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

Array = jax.Array


HParams = Mapping[str, Array]


Params = Any


@dataclasses.dataclass(frozen=True)
class TwoStageFit:
  """A ``fit`` in two stages, so the prompt side can be shared.

  Attributes:
    prompt_fit: ``prompt_fit(key, inputs, hp, pad) -> prompt``: what depends
      only on the key, ``hp``, ``inputs.emb_nd`` and ``inputs.train_idx``
      (e.g. the K-means clustering of the training prompts), never on
      labels, pools or ``val_idx``.
    llm_fit: ``llm_fit(prompt, key, inputs, hp, pad) -> params``: the rest.
  """

  prompt_fit: Callable[..., Any]
  llm_fit: Callable[..., Params]

  def __call__(self, key, inputs, hp, pad) -> Params:
    prompt = self.prompt_fit(key, inputs, hp, pad)
    return self.llm_fit(prompt, key, inputs, hp, pad)


@dataclasses.dataclass(frozen=True)
class Estimator:
  """A router, as pure functions (see the module docstring).

  Attributes:
    name: key used in configs, the CLI, tables and plots.
    fit: ``fit(key, inputs, hp, pad) -> params``.
    gamma: ``gamma(params, emb_qd, inputs, pad) -> gamma_qm``.
    hp_grid: ``hp_grid(n_train, n_val) -> {name: [G] values}``.
    pad_key: name of the integer size hyperparameter that ``pad`` bounds,
      or None.
    points: optional closed-form curve points (replaces the lambda sweep).
    clairvoyant: True if it sees test-LLM labels (reference, not a router).
    description: one line for tables and ``--help``.
    fit_selected_only: fit the test view at the selected point only.
    selector: optional estimator whose selection view picks the grid point
      (see the module docstring); the test view is then fitted at that
      point only.
    fixed_grid: optional ``fixed_grid(n_train, n_val) -> {name: [1]}``, the
      one point used when nothing can select (no training LLMs, the
      Math+Code setting); None: ``hp_grid`` must have one point there.
    needs_training_llms: True if the fit learns from training LLMs'
      labels beyond ``psi`` (LearnedMap): refused without any.
  """

  name: str
  fit: Callable[..., Params]
  gamma: Callable[..., Array]
  hp_grid: Callable[[int, int], Mapping[str, np.ndarray]]
  pad_key: str | None = None
  points: Callable[..., tuple[Array, Array, Array]] | None = None
  clairvoyant: bool = False
  description: str = ''
  fit_selected_only: bool = False
  selector: Estimator | None = None
  fixed_grid: Callable[[int, int], Mapping[str, np.ndarray]] | None = None
  needs_training_llms: bool = False

  def grid(
      self, n_train: int, n_val: int, *, fixed: bool = False
  ) -> dict[str, np.ndarray]:
    """The candidate grid as equal-length 1-D arrays (validated);
    ``fixed``: the no-selection point (``fixed_grid``, if any)."""
    make = self.fixed_grid if fixed and self.fixed_grid else self.hp_grid
    grid = {
        k: np.atleast_1d(np.asarray(v)) for k, v in make(n_train, n_val).items()
    }
    sizes = {v.shape for v in grid.values()}
    if len(sizes) > 1 or any(len(s) != 1 for s in sizes):
      raise ValueError(
          f'{self.name}.hp_grid: expected equal-length 1-D arrays, got '
          f'{ {k: v.shape for k, v in grid.items()} }.'
      )
    if self.pad_key is not None and self.pad_key not in grid:
      raise ValueError(
          f'{self.name}.hp_grid: missing the pad key {self.pad_key!r}.'
      )
    return grid

  def pad(self, grid: Mapping[str, np.ndarray]) -> int:
    """Static size every grid point is padded to."""
    if self.pad_key is None:
      return 1
    return int(np.max(grid[self.pad_key]))


def single_point(**hp: float) -> Callable[[int, int], dict[str, np.ndarray]]:
  """An ``hp_grid`` with one fixed point (no selection)."""
  return lambda n_train, n_val: {k: np.asarray([v]) for k, v in hp.items()}


def reused(factory):
  """Equal arguments give the same ``Estimator`` object.

  Compiled protocols are cached by estimator identity (its functions compare
  by identity), so without this every call of a factory would compile the
  whole protocol again. Estimators are frozen, so sharing one is safe.
  Unhashable arguments (a list of betas) just build a new one.
  """
  cached = functools.cache(factory)

  @functools.wraps(factory)
  def build(*args, **kwargs):
    try:
      hash((args, tuple(kwargs.items())))
    except TypeError:
      return factory(*args, **kwargs)
    return cached(*args, **kwargs)

  return build
