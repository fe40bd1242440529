"""Held-out calibration prompts kept from fit (heldout.py, io.py)."""

import os
import tempfile

import jax
import numpy as np
from absl.testing import absltest

from tests import synthetic
from unirouter_jax.data import Dataset
from unirouter_jax.deploy import heldout
from unirouter_jax.deploy import io as router_io
from unirouter_jax.deploy import router as router_lib


def toy_dataset(n=400, m=4, seed=0):
  data, _, _ = synthetic.cluster_routing_problem(seed, n=n, m=m)
  ds = Dataset(
      name='toy',
      prompt_ids=np.asarray([f'p{i}' for i in range(n)]),
      prompts=np.asarray([f'prompt {i}' for i in range(n)]),
      tasks=None,
      llm_names=tuple(data.llm_names),
      quality_nm=np.asarray(data.quality_nm),
      label_mask_nm=np.asarray(data.label_mask_nm),
      cost_nm=np.asarray(data.cost_nm),
      per_prompt_cost=False,
      cost_unit='usd_per_query',
      provenance={},
  )
  return ds, np.asarray(data.emb_nd)


class HeldoutTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ds, cls.emb = toy_dataset()
    cls.router, cls.info = router_io.fit_from_dataset(
        jax.random.key(0), cls.ds, cls.emb, k=4, probe_size=40, calib_size=None
    )
    cls.calib = cls.info['calibration']

  def test_fit_holds_out_disjoint_prompts(self):
    info, calib = self.info, self.calib
    self.assertEqual(info['num_calib'], heldout.default_size(400, 40))
    self.assertEqual(calib.num_prompts, 40)
    self.assertEqual(
        info['num_probe'] + info['num_calib'] + info['num_train'], 400
    )
    self.assertEmpty(set(calib.prompt_ids) & set(self.router.probe_ids))
    rows = [int(i[1:]) for i in calib.prompt_ids]
    np.testing.assert_array_equal(calib.emb_cd, self.emb[rows])

  def test_no_calibration_by_default(self):
    _, info = router_io.fit_from_dataset(
        jax.random.key(0), self.ds, self.emb, k=4, probe_size=40
    )
    self.assertEqual(info['num_calib'], 0)
    self.assertNotIn('calibration', info)
    self.assertEqual(info['num_train'], 360)

  def test_save_load_round_trip(self):
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'r')
      router_io.save_router(path, self.router, self.calib)
      router, calib = router_io.load_deployed(path)
      man = router_io.read_router_manifest(path)
      self.assertEqual(man['calibration']['prompt_ids'], list(calib.prompt_ids))
      router_io.save_router(path, router)  # without: none comes back
      self.assertIsNone(router_io.load_deployed(path)[1])
    self.assertEqual(calib.prompt_ids, self.calib.prompt_ids)
    np.testing.assert_array_equal(calib.emb_cd, self.calib.emb_cd)
    jax.tree.map(np.testing.assert_array_equal, router, self.router)

  def test_budget_is_calibrated_on_heldout_not_batch(self):
    budget = float(np.median(np.asarray(self.router.cost_m)))
    lams = []
    for batch in (self.emb[:7], self.emb[100:300]):
      cal, source = heldout.budget_calibration(
          self.router, self.calib, batch, budget
      )
      self.assertEqual(
          source, {'calibrated_on': 'held-out', 'calibration_prompts': 40}
      )
      lams.append(float(cal.lam))
    self.assertEqual(lams[0], lams[1])
    cal, source = heldout.budget_calibration(
        self.router, None, self.emb[:7], budget
    )
    self.assertEqual(source['calibrated_on'], 'batch')
    self.assertEqual(source['calibration_prompts'], 7)
    self.assertEqual(source['note'], heldout.NOTE_BATCH)
    self.assertStartsWith(
        heldout.NOTE_BATCH, 'this router keeps no held-out calibration prompts'
    )

  def test_bad_calibration_sets(self):
    with self.assertRaisesRegex(
        ValueError,
        r'^calib_size: expected 0\.\.359 \(the prompts left after 40 probe '
        r'prompts, less one to cluster\), got 360\.$',
    ):
      router_io.fit_from_dataset(
          jax.random.key(0),
          self.ds,
          self.emb,
          k=4,
          probe_size=40,
          calib_size=360,
      )
    wrong = heldout.CalibrationSet(np.zeros((3, 5), np.float32), ('a',) * 3)
    with self.assertRaisesRegex(
        ValueError,
        r'^calibration: expected non-empty \[c, 8\] embeddings, got \(3,'
        r' 5\)\.$',
    ):
      router_io.save_router('/nonexistent/never', self.router, wrong)
    short = heldout.CalibrationSet(np.zeros((3, 8), np.float32), ('a',))
    with self.assertRaisesRegex(
        ValueError, r'^calibration: expected 3 prompt ids, got 1\.$'
    ):
      heldout.check(self.router, short)
    self.assertFalse(os.path.exists('/nonexistent/never'))


class ZeroLLMTest(absltest.TestCase):

  def test_fit_and_build_with_no_llm_are_refused(self):
    emb = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    with self.assertRaisesRegex(
        ValueError, r'^quality_nm: a router needs at least one LLM, got none\.$'
    ):
      router_lib.fit_router(
          jax.random.key(0),
          emb,
          np.zeros((50, 0)),
          np.zeros((50, 0), bool),
          np.zeros((0,)),
          [],
          train_idx=np.arange(10, 50),
          probe_idx=np.arange(10),
          k=2,
      )


if __name__ == '__main__':
  absltest.main()
