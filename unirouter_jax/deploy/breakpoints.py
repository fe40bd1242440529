"""Cost weights at which routing changes, and safe points between them.

Under K-means every prompt of cluster ``k`` scores LLM ``m`` as
``psi_km + lam * cost_m``: a line in ``lam``. A cheaper LLM ``a`` and a
dearer, better one ``b`` (``psi_kb < psi_ka``) swap at
``lam = (psi_ka - psi_kb) / (cost_b - cost_a)``; between two consecutive
such breakpoints every decision, for every prompt, is constant.

A cost weight found by bisection (:mod:`unirouter_jax.deploy.calibration`)
sits on a breakpoint, where two LLMs' scores agree to the last bit, so the
LLM it picks there depends on float rounding: float32 here, float64 in a
gateway written in another language, fused multiply-add or not.
Worse, when two LLMs cost nearly the same their scores cross at a shallow
angle, and float32 rounding decides either way over a whole zone of cost
weights around the crossing. **[project choice]** :func:`interior` moves
such a cost weight to the geometric middle between the boundary's zone and
the next, where every implementation decides the same (the caller checks
that the target is still met).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

# The least relative half-width of a breakpoint's zone of float noise.
_REL = 1e-4


@jax.jit
def breakpoints(psi_km, cluster_mask_k, cost_m, pool_m) -> tuple[Array, Array]:
  """``([p] breakpoints, [p] noise)``, sorted, ``p = k * m * m``.

  The breakpoints are a superset of the true ones (every pairwise crossing,
  not only those on the lower envelope); ``inf`` fills the entries of no
  crossing. ``noise`` is the relative half-width of the zone around each
  where float32 rounding of the two scores may decide either way: wide
  when the two LLMs' costs are nearly equal (the scores then cross at a
  shallow angle), at least ``1e-4``.
  """
  psi_a, psi_b = psi_km[:, :, None], psi_km[:, None, :]
  cost_a, cost_b = cost_m[:, None], cost_m[None, :]
  d_psi_kab = psi_a - psi_b
  dearer_ab = cost_b > cost_a
  ok_kab = (
      cluster_mask_k[:, None, None]
      & (pool_m[:, None] & pool_m[None, :] & dearer_ab)[None]
      & (d_psi_kab > 0)
  )
  d_psi_kab = jnp.where(ok_kab, d_psi_kab, 1.0)
  lam_kab = d_psi_kab / jnp.where(dearer_ab, cost_b - cost_a, 1.0)[None]
  # Rounding of either score (a few ulps of its size) over their gap.
  size_kab = jnp.abs(psi_a) + jnp.abs(psi_b) + lam_kab * (cost_a + cost_b)
  eps = jnp.finfo(psi_km.dtype).eps
  noise_kab = jnp.maximum(8 * eps * size_kab / d_psi_kab, _REL)
  lam_p = jnp.where(ok_kab, lam_kab, jnp.inf).ravel()
  order = jnp.argsort(lam_p)
  return lam_p[order], jnp.where(ok_kab, noise_kab, 0.0).ravel()[order]


def interior(lam, lam_alt, bp_p, noise_p) -> tuple[Array, Array]:
  """``(lam, lam_alt)`` moved to the middle of their steps.

  Args:
    lam: ``[]`` cost weight on one side of a boundary.
    lam_alt: ``[]`` cost weight on the other side (the two bisection
      bounds); equal to ``lam`` when there is no boundary.
    bp_p, noise_p: ``[p]`` breakpoints and their noise (:func:`breakpoints`).

  Returns:
    Each moved to the geometric middle between the noise zone of the
    boundary and the next zone on its side (twice / half the zone's edge
    past the last / first); both unchanged when ``lam == lam_alt`` or no
    zone holds the boundary. The caller checks the result still meets the
    target.
  """
  lo, hi = jnp.minimum(lam, lam_alt), jnp.maximum(lam, lam_alt)
  lo_p, hi_p = bp_p * (1 - noise_p), bp_p * (1 + noise_p)
  near_p = (hi_p >= lo) & (lo_p <= hi)
  z_lo = jnp.min(jnp.where(near_p, lo_p, jnp.inf))
  z_hi = jnp.max(jnp.where(near_p, hi_p, 0.0))
  above = jnp.min(jnp.where(lo_p > z_hi, lo_p, jnp.inf))
  below = jnp.max(jnp.where(hi_p < z_lo, hi_p, 0.0))
  up = jnp.where(jnp.isfinite(above), jnp.sqrt(z_hi * above), 2.0 * z_hi)
  down = jnp.where(below > 0, jnp.sqrt(z_lo * below), 0.5 * z_lo)
  found = jnp.any(near_p) & (lam != lam_alt)
  lam_up = lam > lam_alt
  new_lam = jnp.where(lam_up, up, down)
  new_alt = jnp.where(lam_up, down, up)
  return (
      jnp.where(found, new_lam, lam).astype(lam.dtype),
      jnp.where(found, new_alt, lam_alt).astype(lam.dtype),
  )
