"""JSON records of routing decisions (route_records.py)."""

import json

import numpy as np
from absl.testing import absltest

from unirouter_jax.core.structs import RouteOutput
from unirouter_jax.deploy import io as router_io
from unirouter_jax.deploy import route_records


def _output(lam=0.0):
  # Prompt 0: a, c and d tie in score at lam = 0; c and d also in cost.
  gamma = np.float32([[0.25, 0.5, 0.25, 0.25], [0.75, 0.125, 0.5, 0.5]])
  cost = np.float32([0.002, 0.001, 0.0015, 0.0015])
  return RouteOutput(
      choice_q=np.int32([2, 1]),
      gamma_qm=gamma,
      cost_m=cost,
      cluster_q=np.int32([3, 0]),
      lam=np.float32(lam),
      llm_names=('a', 'b', 'c', 'd'),
  )


class RouteRecordsTest(absltest.TestCase):

  def test_clean_numbers(self):
    self.assertEqual(route_records.clean(np.float32(0.002)), 0.002)
    self.assertEqual(float(np.float32(0.002)), 0.0020000000949949026)
    self.assertEqual(route_records.clean(np.float32(1e-10)), 1e-10)
    self.assertEqual(route_records.clean(3), 3.0)
    for x in np.random.default_rng(0).uniform(0, 10, 100).astype(np.float32):
      self.assertEqual(np.float32(route_records.clean(x)), x)  # exact

  def test_tied_candidates_in_rule_order(self):
    rows = route_records.records(_output(), ['p', 'q'])
    self.assertEqual(
        [c['llm'] for c in rows[0]['candidates']], ['c', 'd', 'a', 'b']
    )
    self.assertEqual(rows[0]['choice'], 'c')
    self.assertEqual(rows[0]['prompt'], 'p')
    self.assertEqual(rows[0]['cluster'], 3)
    self.assertEqual(rows[0]['candidates'][0]['cost'], 0.0015)
    self.assertEqual(rows[0]['candidates'][2]['cost'], 0.002)
    self.assertEqual(
        [c['llm'] for c in rows[1]['candidates']], ['b', 'c', 'd', 'a']
    )
    top = route_records.records(_output(), top=2)
    self.assertNotIn('prompt', top[0])
    self.assertLen(top[0]['candidates'], 2)

  def test_json_and_jsonl(self):
    text = router_io.dumps_route(_output(0.5))
    self.assertNotIn('0.0020000000949949026', text)
    body = json.loads(text)
    self.assertEqual(list(body), ['results'])
    self.assertEqual(body['results'][0]['lambda'], 0.5)
    text = route_records.dumps_json(_output(), summary={'lambda': 0.0})
    self.assertEqual(list(json.loads(text)), ['lambda', 'results'])
    lines = route_records.dumps_jsonl(_output(), ['p', 'q']).splitlines()
    self.assertLen(lines, 2)
    self.assertEqual(
        [json.loads(x) for x in lines], route_records.records(_output(), 'pq')
    )

  def test_mean_cost(self):
    self.assertEqual(route_records.mean_cost(_output()), 0.00125)


if __name__ == '__main__':
  absltest.main()
