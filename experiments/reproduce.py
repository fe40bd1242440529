r"""Reproduces the paper's protocol on one dataset or a sweep of datasets.

  python experiments/reproduce.py --config=configs/bundled.py \
      --workdir=results/bundled

Runs every method of ``config.methods`` (plus the per-prompt Oracle and the
single LLMs) over ``config.protocol.num_trials`` trials and writes, per
dataset, ``config.json``, ``metrics.jsonl``, ``summary.json``,
``results.md`` and ``plots/*.png`` (see ``unirouter_jax/workdir.py``). A
config module with a ``sweep()`` generator runs once per override dict into
``<workdir>/<data.name>/`` and writes the combined tables to
``<workdir>/results.md``. Rerunning resumes from the saved chunks.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

# The repository root, so that config files can `from configs import ...`.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import (
    app,
    flags,
    logging,
)
from ml_collections import config_flags

from unirouter_jax.evaluation import sweep as sweep_lib
from unirouter_jax.evaluation.protocol import ProtocolConfig
from unirouter_jax.shell import chunks, compile_cache, host_devices, report
from unirouter_jax.shell import workdir as workdir_lib


def to_spec(config) -> workdir_lib.RunSpec:
  """Converts a ConfigDict to the library's plain :class:`RunSpec`."""
  if not config.data.name:
    raise ValueError(
        'data.name: this config needs a path; pass '
        '--config.data.name=/path/to/the/data'
    )
  return workdir_lib.RunSpec.create(
      data=config.data.name,
      format=config.data.format,
      embeddings=config.data.embeddings,
      encoder_cache_dir=config.data.encoder_cache_dir,
      max_prompts=config.data.max_prompts,
      methods=tuple(config.methods),
      num_trials=config.protocol.num_trials,
      test_llm_fraction=config.protocol.test_llm_fraction,
      train_fraction=config.protocol.train_fraction,
      val_fraction=config.protocol.val_fraction,
      static_pool=config.protocol.static_pool,
      no_training_llms=config.protocol.get('no_training_llms', False),
      num_lambdas=config.routing.num_lambdas,
      grid_points=config.routing.grid_points,
      trial_batch_size=config.sweep.trial_batch_size
      or sweep_lib.tuned_config(ProtocolConfig()).trial_batch_size,
      devices=config.sweep.devices,
      chunk_size=config.sweep.chunk_size,
      seed=config.protocol.seed,
      epochs_scale=config.cluster_map.epochs_scale,
      learned_map_arch=config.cluster_map.arch,
      kmeans_k=tuple(int(k) for k in config.clustering.kmeans_k),
      knn_k=tuple(int(k) for k in config.clustering.knn_k),
      heatmap_k=config.clustering.heatmap_k if config.output.plots else 0,
  )


def load_sweep(config_path: str | None):
  """The ``sweep`` generator of a config file, or None."""
  if not config_path:
    return None
  path, _, arg = config_path.partition(':')
  spec = importlib.util.spec_from_file_location('_config_module', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  fn = getattr(module, 'sweep', None)
  return None if fn is None else list(fn(arg or None))


def run(config, workdir, sweep=None, overrides=None, *, log=print):
  """Runs ``config`` (once, or once per ``sweep`` override) in ``workdir``.

  ``overrides`` (the command line's ``--config.*`` values) are applied after
  each sweep override, so the command line wins.

  Returns:
    The summary dict of every dataset run.
  """
  workdir = pathlib.Path(workdir)
  runs = []
  if sweep:
    for point in sweep:
      c = config.copy_and_resolve_references()
      c.update_from_flattened_dict(point)
      c.update_from_flattened_dict(dict(overrides or {}))
      runs.append((workdir / c.data.name, c))
  else:
    runs.append((workdir, config))
  summaries = []
  for wd, c in runs:
    summaries.append(
        workdir_lib.run(
            to_spec(c),
            wd,
            progress=c.output.progress,
            plots=c.output.plots,
            log=log,
        )
    )
  if sweep:
    chunks.write_json(
        workdir / 'config.json',
        {'base': json.loads(config.to_json()), 'sweep': sweep},
    )
    chunks.write_json(
        workdir / 'summary.json', {s['dataset']: s for s in summaries}
    )
  tables = '\n\n'.join(report.markdown_table(s) for s in summaries)
  if len(summaries) > 1:
    tables = (
        "## All datasets (mean curve; QNC as % of the best test LLM's cost)\n\n"
        + report.compact_table(summaries)
        + '\n\n'
        + tables
    )
  chunks.atomic_write(workdir / 'results.md', lambda f: f.write(tables))
  log('\n' + tables + '\n')
  for wd, c in runs:
    if c.output.plots:
      log(
          f'Plots: {wd / "plots"}/ (deferral_curves.png, area_vs_k.png'
          + (', psi_similarity.png)' if c.clustering.heatmap_k else ')')
      )
  log(
      f'Tables: {workdir / "results.md"}; per-trial records: '
      f'{runs[0][0] / "metrics.jsonl"}'
      + (' (per dataset)' if sweep else '')
  )
  return summaries


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  config = _CONFIG.value
  if config is None or _WORKDIR.value is None:
    raise app.UsageError('--config and --workdir are required.')
  logging.set_verbosity(logging.WARNING)
  # Reruns and resumes reuse compiled programs (see shell.compile_cache:
  # JAX_COMPILATION_CACHE_DIR, else ~/.cache/unirouter_jax/xla).
  compile_cache.enable()
  # One CPU device per core unless the config or the environment says
  # (shell.host_devices); before JAX starts its backends.
  host_devices.split_cpu(config.sweep.get('cpu_devices', 0))
  flag = flags.FLAGS['config']
  sweep = load_sweep(config_flags.get_config_filename(flag))
  try:
    run(config, _WORKDIR.value, sweep, config_flags.get_override_values(flag))
  except ValueError as e:  # bad data or a workdir of another run
    sys.exit(f'reproduce.py: error: {e}')


if __name__ == '__main__':
  # Flags are defined here, not on import, so tests and other scripts can
  # import this module's functions.
  _CONFIG = config_flags.DEFINE_config_file(
      'config', None, 'Config file, e.g. configs/bundled.py[:tiny|:full].'
  )
  _WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
  app.run(main)
