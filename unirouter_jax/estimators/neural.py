"""The MLP and MatFac routers (method.md 2.3), clairvoyant or retrained.

* :func:`clairvoyant_oracle`: the paper's references, trained on the
  training prompts' labels of every LLM, the test LLMs' included (they see
  what no real router can: tables mark them clairvoyant).
* :func:`retrained`: the same networks fitted on the probe set, the only
  prompts the new LLMs are labelled on (the ICLR camera-ready's baselines,
  which overfit a small probe set).
"""

from __future__ import annotations

import functools

from unirouter_jax.estimators import oracles
from unirouter_jax.estimators.base import Estimator, reused, single_point


def _oracle_fit(
    key,
    inputs,
    hp,
    pad,
    *,
    kind,
    epochs=30,
    batch_size=64,
    patience=None,
    on_probe=False,
):
  """``oracles.fit_oracle`` on the training prompts (the clairvoyant
  references; the checkpoint chosen on the probe prompts), or with
  ``on_probe`` retrained on the probe (validation) prompts, the only prompts
  the new (test) LLMs are labelled on, with every LLM's labels there. With
  no other prompts to hold out, its best-validation checkpoint is chosen on
  the same probe prompts: the paper's point is that such a router overfits
  a small probe set."""
  del pad
  return oracles.fit_oracle(
      key,
      inputs.emb_nd,
      inputs.val_idx if on_probe else inputs.train_idx,
      inputs.val_idx,
      inputs.error_nm,
      inputs.visible_nm,
      inputs.train_llm_m | inputs.pool_m,
      hp['lr'],
      kind=kind,
      epochs=epochs,
      batch_size=batch_size,
      patience=patience,
  )


def _oracle_gamma(params, emb_qd, inputs, pad, *, kind):
  del inputs, pad
  return oracles.oracle_gamma(params, emb_qd, kind=kind)


@reused
def clairvoyant_oracle(
    kind: str, *, epochs: int = 30, patience: int | None = oracles.PATIENCE
) -> Estimator:
  """Clairvoyant MLP / MatFac (see test-LLM labels), method.md 2.3.

  Args:
    kind: ``'mlp'`` or ``'matfac'``.
    epochs: the most training epochs (paper: 30, best-validation checkpoint).
    patience: early stop after this many epochs without a lower validation
      loss; None trains all ``epochs`` (see ``oracles``).
  """
  if kind not in ('mlp', 'matfac'):
    raise ValueError(f"kind: expected 'mlp' or 'matfac', got {kind!r}.")
  return Estimator(
      name=f'{kind}_oracle',
      fit=functools.partial(
          _oracle_fit, kind=kind, epochs=epochs, patience=patience
      ),
      gamma=functools.partial(_oracle_gamma, kind=kind),
      hp_grid=single_point(lr=1e-3),
      clairvoyant=True,
      description=f'{kind.upper()} (clairvoyant: sees test-LLM labels).',
  )


@reused
def retrained(
    kind: str, *, epochs: int = 30, patience: int | None = oracles.PATIENCE
) -> Estimator:
  """MLP / MatFac retrained with the new LLMs' probe labels (not clairvoyant).

  The ICLR camera-ready's baseline: the clairvoyant architecture and
  training settings (method.md 2.3), retrained on the probe (validation)
  prompts labelled by every LLM, the new test LLMs included: N_val prompts
  only, which it overfits. Not clairvoyant: it never sees a test LLM's
  label outside the probe set.

  Args:
    kind: ``'mlp'`` or ``'matfac'``.
    epochs: the most training epochs (best-validation checkpoint).
    patience: early stop after this many epochs without a lower validation
      loss; None trains all ``epochs``.
  """
  if kind not in ('mlp', 'matfac'):
    raise ValueError(f"kind: expected 'mlp' or 'matfac', got {kind!r}.")
  return Estimator(
      name=f'{kind}_retrained',
      fit=functools.partial(
          _oracle_fit,
          kind=kind,
          epochs=epochs,
          patience=patience,
          on_probe=True,
      ),
      gamma=functools.partial(_oracle_gamma, kind=kind),
      hp_grid=single_point(lr=1e-3),
      description=f'{kind.upper()} retrained on the probe labels (fair).',
  )
