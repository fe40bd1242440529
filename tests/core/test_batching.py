"""Properties of unirouter_jax.core.batching (even ``lax.map`` batches)."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax.core import batching


class EvenBatchTest(parameterized.TestCase):

  def test_least_padding_within_bounds(self):
    for n in range(1, 120):
      for max_batch in (1, 2, 5, 8, 13):
        b = batching.even_batch(n, max_batch)
        self.assertLessEqual(b, max_batch)
        padded = -(-n // b) * b
        if n <= max_batch:
          self.assertEqual(b, n)
          continue
        self.assertGreaterEqual(2 * b, max_batch)
        # No allowed size pads less (brute force).
        best = min(
            -(-n // c) * c for c in range(-(-max_batch // 2), max_batch + 1)
        )
        self.assertEqual(padded, best)

  def test_bad_sizes_raise(self):
    with self.assertRaisesRegex(ValueError, 'max_batch'):
      batching.even_batch(5, 0)


class MapEvenTest(parameterized.TestCase):

  @parameterized.parameters(None, 1, 3, 4, 8, 20)
  def test_equals_a_python_loop(self, max_batch):
    xs = {'a': jnp.arange(10.0), 'b': jnp.arange(20.0).reshape(10, 2)}

    def fn(row):
      return {'s': row['a'] * 2 + row['b'].sum(), 'v': row['b'] ** 2}

    got = jax.jit(lambda t: batching.map_even(fn, t, max_batch))(xs)
    want = [fn({k: v[i] for k, v in xs.items()}) for i in range(10)]
    for key in ('s', 'v'):
      np.testing.assert_allclose(got[key], np.stack([w[key] for w in want]))

  def test_traces_the_body_once_when_the_batch_does_not_divide(self):
    # lax.map's remainder is a second vmapped copy of the body (traced and
    # compiled again); map_even pads instead.
    for mapper, traces in (
        (lambda f, x: jax.lax.map(f, x, batch_size=4), 2),
        (lambda f, x: batching.map_even(f, x, 4), 1),
    ):
      count = []

      def body(x, count=count):
        count.append(1)
        return x + 1.0

      out = jax.jit(lambda x, mapper=mapper: mapper(body, x))(jnp.zeros(10))
      np.testing.assert_array_equal(out, np.ones(10))
      self.assertLen(count, traces)


if __name__ == '__main__':
  absltest.main()
