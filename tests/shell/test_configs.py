"""Every config loads, is locked, and converts to a valid RunSpec."""

import importlib
import pathlib
import sys

from absl.testing import absltest, parameterized

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from configs import bundled  # noqa: E402
from experiments import reproduce  # noqa: E402
from unirouter_jax.shell import workdir  # noqa: E402

CONFIGS = sorted(
    p.stem for p in (ROOT / 'configs').glob('*.py') if p.stem != '__init__'
)
UPSTREAM = ('embedllm', 'routerbench', 'sprout')


class ConfigsTest(parameterized.TestCase):

  def test_every_config_is_listed(self):
    self.assertContainsSubset(
        {
            'default',
            'bundled',
            'routerbench_subset',
            'llmrouter_dc',
            'alpacaeval',
            'embedllm',
            'routerbench',
            'sprout',
            'val_size_study',
        },
        set(CONFIGS),
    )

  @parameterized.product(name=CONFIGS, arg=(None, 'tiny', 'full'))
  def test_loads_locked_and_converts(self, name, arg):
    config = importlib.import_module(f'configs.{name}').get_config(arg)
    self.assertTrue(config.is_locked)
    with self.assertRaises(AttributeError):
      config.new_field = 1
    for section in (
        'data',
        'protocol',
        'clustering',
        'cluster_map',
        'routing',
        'sweep',
        'output',
    ):
      self.assertIn(section, config)
    if name in UPSTREAM:
      with self.assertRaisesRegex(ValueError, 'data.name'):
        reproduce.to_spec(config)
      with config.unlocked():
        config.data.name = '/some/path'
    spec = reproduce.to_spec(config)
    self.assertIsInstance(spec, workdir.RunSpec)
    if arg == 'tiny':
      self.assertLessEqual(spec.num_trials, 4)
      self.assertLessEqual(spec.max_prompts, 300)
      self.assertFalse(config.output.progress)
    if arg == 'full':  # the paper: 400 trials (100 in its N_val study)
      self.assertEqual(
          spec.num_trials, 100 if name == 'val_size_study' else 400
      )

  def test_unknown_variant_fails(self):
    with self.assertRaisesRegex(ValueError, 'tiny'):
      importlib.import_module('configs.default').get_config('huge')

  def test_dataset_protocols(self):
    rb = importlib.import_module('configs.routerbench_subset').get_config()
    self.assertEqual(rb.protocol.test_llm_fraction, 0.5)
    self.assertEqual(rb.protocol.val_fraction, 0.1)
    dc = importlib.import_module('configs.llmrouter_dc').get_config()
    self.assertAlmostEqual(dc.protocol.test_llm_fraction, 1 / 3, places=12)
    full = importlib.import_module('configs.routerbench').get_config()
    self.assertEqual(full.protocol.val_fraction, 0.01)

  def test_bundled_sweep_covers_the_bundled_sets(self):
    points = list(bundled.sweep())
    self.assertEqual(
        [p['data.name'] for p in points],
        ['routerbench_subset', 'llmrouter_dc', 'alpacaeval'],
    )
    config = bundled.get_config()
    self.assertLess(config.protocol.num_trials, 400)
    for point in points:
      c = config.copy_and_resolve_references()
      c.update_from_flattened_dict(point)
      spec = reproduce.to_spec(c)
      self.assertEqual(
          spec.protocol.test_llm_fraction,
          workdir.DATASET_PROTOCOL[point['data.name']]['test_llm_fraction'],
      )


if __name__ == '__main__':
  absltest.main()
