"""Held-out calibration prompts, kept with a router from its fit.

A budget (a target mean cost per query) becomes a cost weight on prompts.
Calibrating on the batch being routed makes that batch hit the budget but
ties the cost weight to it: two batches of the same traffic get different
cost weights, and a batch of one prompt a degenerate one. Calibrating on
held-out prompts gives one cost weight for the traffic they stand for.

``io.fit_from_dataset(..., calib_size=)`` draws them at random, disjoint
from the probe and the training prompts (K-means never sees them), and
``io.save_router(..., calibration=)`` stores their embeddings beside the
router. Only embeddings are kept: routing reads nothing else, and adding or
removing an LLM or changing a cost leaves them valid.

:func:`budget_calibration` calibrates a budget on them, or, for a router
that keeps none (saved before they were kept, or fitted with
``calib_size=0``), on the batch, saying so in its report.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from unirouter_jax.core.structs import Router
from unirouter_jax.deploy import calibration
from unirouter_jax.deploy import router as router_lib

Array = jax.Array

SOURCE_HELDOUT = 'held-out'
SOURCE_BATCH = 'batch'
NOTE_BATCH = (
    'this router keeps no held-out calibration prompts (saved before they '
    'were kept, or fitted with --calib-size 0); the budget was calibrated '
    'on the routed batch itself, so its cost weight depends on the batch'
)


@struct.dataclass
class CalibrationSet:
  """Held-out prompts a budget is calibrated on. Axes: ``c`` prompts.

  Attributes:
    emb_cd: ``[c, d]`` their embeddings (the router's encoder).
    prompt_ids: ``c`` their ids in the fitting dataset (static).
  """

  emb_cd: Array
  prompt_ids: tuple[str, ...] = struct.field(pytree_node=False, default=())

  @property
  def num_prompts(self) -> int:
    return int(self.emb_cd.shape[0])


def make(emb_nd, prompt_ids: Sequence[str], idx) -> CalibrationSet:
  """The calibration set of rows ``idx`` of ``emb_nd`` / ``prompt_ids``."""
  idx = np.asarray(idx, np.int64)
  return CalibrationSet(
      emb_cd=jnp.asarray(np.asarray(emb_nd, np.float32)[idx]),
      prompt_ids=tuple(str(prompt_ids[i]) for i in idx),
  )


def default_size(n: int, probe_size: int) -> int:
  """10% of the prompts, 20 to 500, at most half of the non-probe ones."""
  return int(min(max(20, round(0.1 * n)), 500, (n - probe_size) // 2))


def check(router: Router, calib: CalibrationSet | None) -> None:
  """ValueError unless ``calib`` (if any) fits the router's embeddings."""
  if calib is None:
    return
  d = router.centroids_kd.shape[1]
  shape = tuple(calib.emb_cd.shape)
  if len(shape) != 2 or shape[0] == 0 or shape[1] != d:
    raise ValueError(
        f'calibration: expected non-empty [c, {d}] embeddings, got {shape}.'
    )
  if len(calib.prompt_ids) != shape[0]:
    raise ValueError(
        f'calibration: expected {shape[0]} prompt ids, got '
        f'{len(calib.prompt_ids)}.'
    )


def budget_calibration(
    router: Router,
    calib: CalibrationSet | None,
    batch_emb_qd,
    budget: float,
    *,
    pool: Sequence[str] | None = None,
) -> tuple[calibration.Calibration, dict]:
  """The cost weight of ``budget``, on held-out prompts when there are any.

  Args:
    router: the router.
    calib: its held-out prompts, or None (then the batch is used).
    batch_emb_qd: ``[q, d]`` the prompts to route.
    budget: target mean cost per query (>= 0).
    pool: optional LLM names to route among.

  Returns:
    ``(calibration, source)``; ``source`` says what it was calibrated on:
    ``{'calibrated_on': 'held-out' | 'batch', 'calibration_prompts': n}``
    plus ``'note'`` (:data:`NOTE_BATCH`) for the batch.
  """
  check(router, calib)
  if calib is None:
    emb = router_lib.check_embeddings(router, batch_emb_qd)
    source = {
        'calibrated_on': SOURCE_BATCH,
        'calibration_prompts': int(emb.shape[0]),
        'note': NOTE_BATCH,
    }
  else:
    emb = calib.emb_cd
    source = {
        'calibrated_on': SOURCE_HELDOUT,
        'calibration_prompts': calib.num_prompts,
    }
  calib_out = calibration.calibrate_lambda(
      router, emb, target_cost=budget, pool=pool
  )
  return calib_out, source
