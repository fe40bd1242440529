"""Scoring a deployed router on held-out labels (router_eval.py)."""

import numpy as np
from absl.testing import absltest

from tests.deploy.test_router import blobs, fit
from unirouter_jax.deploy import curve as router_eval


class DeferralCurveTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.emb, cls.q, cls.cost, _ = blobs()
    cls.router = fit(cls.emb, cls.q, cls.cost)
    cls.held = slice(600, 900)

  def test_curve_is_a_valid_deferral_curve(self):
    c = router_eval.deferral_curve(
        self.router, self.emb[self.held], self.q[self.held], self.cost
    )
    area = float(c.area)
    # Area of a quality curve on [0, 1] lies in [0, 1]; the envelope is
    # non-decreasing up to its peak (tolerance 1e-6).
    self.assertTrue(0.0 < area <= 1.0, area)
    self.assertAlmostEqual(float(c.peak), float(np.max(c.quality_g)), 6)
    self.assertTrue(np.all(np.diff(np.asarray(c.quality_g)) >= -1e-6))

  def test_columns_are_picked_by_name(self):
    # Extra and permuted label columns, named, give the same curve (1e-6).
    perm = np.array([2, 0, 3, 1])
    names = [self.router.llm_names[i] for i in perm] + ['other']
    q = np.concatenate([self.q[:, perm], self.q[:, :1]], axis=1)
    cost = np.concatenate([self.cost[perm], [0.5]])
    got = router_eval.deferral_curve(
        self.router, self.emb[self.held], q[self.held], cost, llm_names=names
    )
    want = router_eval.deferral_curve(
        self.router, self.emb[self.held], self.q[self.held], self.cost
    )
    np.testing.assert_allclose(got.quality_g, want.quality_g, atol=1e-6)

  def test_missing_llm_labels_raise(self):
    with self.assertRaisesRegex(ValueError, 'llm_names'):
      router_eval.deferral_curve(
          self.router,
          self.emb[self.held],
          self.q[self.held, :3],
          self.cost[:3],
          llm_names=list(self.router.llm_names[:3]),
      )
    with self.assertRaisesRegex(ValueError, 'quality_qm'):
      router_eval.deferral_curve(
          self.router, self.emb[self.held], self.q[self.held, :3], 1.0
      )


if __name__ == '__main__':
  absltest.main()
