"""RoutingData.create validates host input and names the argument."""

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core.structs import RoutingData

EMB = np.zeros((4, 3), np.float32)
Q = np.array([[1, 0], [0.5, 1], [0, 0], [1, 1]], np.float32)
COST = np.array([1.0, 2.0], np.float32)


class CreateTest(parameterized.TestCase):

  def test_per_llm_costs_broadcast_and_nan_labels_are_missing(self):
    q = Q.copy()
    q[2, 1] = np.nan
    data = RoutingData.create(EMB, q, COST, llm_names=['a', 'b'])
    self.assertEqual(data.cost_nm.shape, (4, 2))
    np.testing.assert_array_equal(data.cost_nm[:, 1], 2.0)
    self.assertFalse(bool(data.label_mask_nm[2, 1]))
    self.assertEqual(float(data.quality_nm[2, 1]), 0.0)
    self.assertEqual(data.llm_names, ('a', 'b'))

  @parameterized.named_parameters(
      ('emb_rows', dict(emb=np.zeros((3, 3))), 'emb_nd'),
      ('emb_1d', dict(emb=np.zeros(4)), 'emb_nd'),
      ('emb_nan', dict(emb=np.full((4, 3), np.nan)), 'emb_nd'),
      ('quality_1d', dict(q=np.zeros(4)), 'quality_nm'),
      ('quality_range', dict(q=Q * 2), 'quality_nm'),
      ('quality_negative', dict(q=Q - 1), 'quality_nm'),
      ('cost_shape', dict(cost=np.ones(3)), 'cost'),
      ('cost_nan', dict(cost=np.array([1.0, np.nan])), 'cost'),
      ('cost_negative', dict(cost=np.array([1.0, -1.0])), 'cost'),
      ('cost_inf_per_prompt', dict(cost=np.full((4, 2), np.inf)), 'cost'),
      ('mask_shape', dict(mask=np.ones((4, 3), bool)), 'label_mask_nm'),
      ('names', dict(names=['a']), 'llm_names'),
      ('empty', dict(emb=np.zeros((0, 3)), q=np.zeros((0, 2))), 'quality_nm'),
  )
  def test_bad_input_names_the_argument(self, overrides, arg):
    kw = dict(emb=EMB, q=Q, cost=COST, mask=None, names=None)
    kw.update(overrides)
    with self.assertRaisesRegex(ValueError, f'^{arg}:'):
      RoutingData.create(
          kw['emb'], kw['q'], kw['cost'], kw['mask'], kw['names']
      )


if __name__ == '__main__':
  absltest.main()
