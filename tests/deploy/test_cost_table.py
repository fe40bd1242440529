"""Per-LLM cost tables (cost_table.py) and their use at fit."""

import os
import tempfile

import jax
import numpy as np
from absl.testing import absltest, parameterized

from tests.deploy.test_heldout import toy_dataset
from unirouter_jax.deploy import cost_table
from unirouter_jax.deploy import io as router_io


class CostTableTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp()

  def _file(self, name, text):
    path = os.path.join(self.tmp, name)
    with open(path, 'w') as f:
      f.write(text)
    return path

  def test_csv_and_json(self):
    csv = self._file('lat.csv', 'llm,cost,note\na,0.5,x\nb,1.25,y\n\n')
    self.assertEqual(cost_table.read(csv), {'a': 0.5, 'b': 1.25})
    js = self._file('lat.json', '{"a": 0.5, "b": 2, "unused": 9}')
    table = cost_table.read(js)
    self.assertEqual(table, {'a': 0.5, 'b': 2.0, 'unused': 9.0})
    np.testing.assert_array_equal(
        cost_table.cost_vector(['b', 'a'], table), np.float32([2.0, 0.5])
    )

  @parameterized.named_parameters(
      (
          'header',
          'c.csv',
          'name,price\na,1\n',
          (
              '{f}: expected a CSV with a header llm,cost (or a .json '
              '{{llm: cost}}).'
          ),
      ),
      (
          'number',
          'c.csv',
          'llm,cost\na,1\nb,fast\n',
          "{f}: row 3, column cost: expected a number, got 'fast'.",
      ),
      (
          'negative',
          'c.csv',
          'llm,cost\na,-1\n',
          "{f}: row 2, LLM 'a': expected a finite cost >= 0, got -1.0.",
      ),
      (
          'nan',
          'c.csv',
          'llm,cost\na,nan\n',
          "{f}: row 2, LLM 'a': expected a finite cost >= 0, got nan.",
      ),
      (
          'duplicate',
          'c.csv',
          'llm,cost\na,1\na,2\n',
          "{f}: row 3: duplicate LLM 'a'.",
      ),
      (
          'short_row',
          'c.csv',
          'llm,cost\na\n',
          '{f}: row 2: expected 2 columns, got 1.',
      ),
      ('empty', 'c.csv', 'llm,cost\n', '{f}: no costs.'),
      ('json', 'c.json', '{', '{f}: invalid JSON: '),
      (
          'json_list',
          'c.json',
          '[1]',
          '{f}: expected a non-empty object {{llm: cost}}.',
      ),
      (
          'json_value',
          'c.json',
          '{"a": "1"}',
          "{f}: LLM 'a': expected a number, got '1'.",
      ),
      (
          'json_bool',
          'c.json',
          '{"a": true}',
          "{f}: LLM 'a': expected a number, got True.",
      ),
  )
  def test_bad_tables(self, name, text, message):
    path = self._file(name, text)
    want = message.format(f=f'--costs {path}')
    with self.assertRaises(ValueError) as ctx:
      cost_table.read(path, source=f'--costs {path}')
    got = str(ctx.exception)
    if want.endswith(': '):
      self.assertStartsWith(got, want)
    else:
      self.assertEqual(got, want)

  def test_unreadable(self):
    path = os.path.join(self.tmp, 'none.csv')
    with self.assertRaisesRegex(
        ValueError, f'^{path}: cannot read: No such file or directory\\.$'
    ):
      cost_table.read(path)

  def test_missing_llm_is_named(self):
    table = {'a': 1.0}
    with self.assertRaises(ValueError) as ctx:
      cost_table.cost_vector(['a', 'b', 'c'], table, '--costs lat.csv')
    self.assertEqual(
        str(ctx.exception),
        "--costs lat.csv: no cost for LLM 'b' (and 1 more); the table must "
        'give a cost for every LLM of the router (3).',
    )
    with self.assertRaises(ValueError) as ctx:
      cost_table.cost_vector(['a', 'b'], table)
    self.assertEqual(
        str(ctx.exception),
        "costs: no cost for LLM 'b'; the table must give a cost for every "
        'LLM of the router (2).',
    )

  def test_fit_with_costs_replaces_the_datasets(self):
    ds, emb = toy_dataset()
    table = {name: 0.25 * (i + 1) for i, name in enumerate(ds.llm_names)}
    router, _ = router_io.fit_from_dataset(
        jax.random.key(0), ds, emb, k=3, probe_size=40, costs=table
    )
    np.testing.assert_array_equal(
        router.cost_m, np.float32([table[n] for n in ds.llm_names])
    )
    again = cost_table.with_costs(router, {n: 1.0 for n in ds.llm_names})
    np.testing.assert_array_equal(again.cost_m, np.ones(ds.num_llms))
    np.testing.assert_array_equal(again.psi_km, router.psi_km)
    with self.assertRaisesRegex(
        ValueError,
        r"^costs: no cost for LLM 'llm_0' \(and 3 more\); the table must give "
        r'a cost for every LLM of the router \(4\)\.$',
    ):
      router_io.fit_from_dataset(
          jax.random.key(0), ds, emb, k=3, probe_size=40, costs={'x': 1.0}
      )


if __name__ == '__main__':
  absltest.main()
