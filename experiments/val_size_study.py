r"""Area vs the probe-set size N_val for UniRoute (K-means) and K-NN.

  python experiments/val_size_study.py --config=configs/val_size_study.py \
      --workdir=results/val_size

Each N_val of ``config.val_size.n_val`` is one resumable protocol run in
``<workdir>/n_val_<N>/``; the study writes ``<workdir>/val_size.json``
(mean per-trial Area and its standard error per method and N_val) and
``<workdir>/val_size.png`` (+-2 standard-error bands).

Every N_val runs one compiled program: the splits and grids are padded to
the largest N_val (``evaluation.padding``; results equal the unpadded runs'
up to float rounding); ``val_size.json`` records the compile and run
seconds per N_val.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

# The repository root, so that config files can `from configs import ...`.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np
from absl import (
    app,
    flags,
)
from ml_collections import config_flags

from experiments import reproduce
from unirouter_jax.evaluation import protocol, stats
from unirouter_jax.shell import chunks, compile_cache, host_devices, run_methods
from unirouter_jax.shell import workdir as workdir_lib

_Z95 = 1.959963984540054


def run(config, workdir, *, log=print) -> dict:
  """Runs every N_val; returns the study's table."""
  workdir = pathlib.Path(workdir)
  base = reproduce.to_spec(config)
  ds, data, _ = workdir_lib.load_routing_data(base)
  n = data.num_prompts
  protocols = [
      dataclasses.replace(base.protocol, val_fraction=n_val / n)
      for n_val in config.val_size.n_val
  ]
  estimators = run_methods.select_estimators(base)
  shared = protocol.common_padding(
      data,
      estimators,
      protocols,
      run_methods.grid_overrides(base, estimators),
  )
  table = {
      'dataset': ds.name,
      'num_prompts': n,
      'trials': base.num_trials,
      'n_val': [],
      'mean': {},
      'se': {},
      'timing': [],
  }
  for n_val, proto in zip(config.val_size.n_val, protocols, strict=True):
    spec = dataclasses.replace(
        base,
        protocol=dataclasses.replace(proto, padding=shared),
        heatmap_k=0,
    )
    out = workdir_lib.run(
        spec,
        workdir / f'n_val_{n_val}',
        progress=config.output.progress,
        plots=False,
        log=log,
    )
    table['n_val'].append(int(out['split']['val_prompts']))
    if len(spec.methods) >= 2:
      table.setdefault('paired', []).append(
          paired_gap(workdir / f'n_val_{n_val}', *spec.methods[:2])
      )
    table['timing'].append({
        k: out['timing'][k]
        for k in ('compile_s', 'run_s')
        if k in out['timing']
    })
    for name in spec.methods:
      row = out['methods'][name]
      lo, hi = row['area_ci']
      table['mean'].setdefault(name, []).append(row['area_trial_mean'])
      table['se'].setdefault(name, []).append((hi - lo) / (2 * _Z95))
  chunks.write_json(workdir / 'val_size.json', table)
  # matplotlib only through plots, only here.
  from unirouter_jax.shell import plots  # pylint: disable=g-import-not-at-top

  plots.val_size_curve(
      workdir / 'val_size.png',
      table['n_val'],
      table['mean'],
      table['se'],
      title=(
          f'{ds.name}: mean test Area vs N_val ({base.num_trials} trials; '
          'bands: ±2 s.e.)'
      ),
  )
  lines = [
      '| N_val | ' + ' | '.join(table['mean']) + ' |',
      '|---|' + '---|' * len(table['mean']),
  ]
  for i, nv in enumerate(table['n_val']):
    cells = [
        f'{table["mean"][k][i]:.4f} ± {2 * table["se"][k][i]:.4f}'
        for k in table['mean']
    ]
    lines.append(f'| {nv} | ' + ' | '.join(cells) + ' |')
  if table.get('paired'):
    first, second = spec.methods[:2]
    lines += [
        '',
        f'Paired per trial, {first} minus {second}:',
        '',
        '| N_val | gap ± 2 s.e. | W/L | sign test p |',
        '|---|---|---|---|',
    ]
    for nv, g in zip(table['n_val'], table['paired'], strict=True):
      lines.append(
          f'| {nv} | {g["gap"]:+.4f} ± {2 * g["se"]:.4f} | '
          f'{g["wins"]}/{g["losses"]} | {g["p"]:.2g} |'
      )
  text = '\n'.join(lines)
  chunks.atomic_write(workdir / 'val_size.md', lambda f: f.write(text))
  log('\n' + text + f'\n\nPlot: {workdir / "val_size.png"}')
  return table


def paired_gap(run_dir, first: str, second: str) -> dict:
  """Per-trial Area of ``first`` minus ``second`` in one run's
  ``metrics.jsonl``: mean, standard error, W/L and the sign test."""
  area = {first: {}, second: {}}
  with open(pathlib.Path(run_dir) / 'metrics.jsonl') as f:
    for line in f:
      rec = json.loads(line)
      if rec['method'] in area:
        area[rec['method']][rec['trial']] = rec['area']
  trials = sorted(area[first])
  a = np.asarray([area[first][t] for t in trials])
  b = np.asarray([area[second][t] for t in trials])
  wins, losses, _, p = stats.sign_test(a, b)
  d = a - b
  return {
      'gap': float(d.mean()),
      'se': float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0,
      'wins': wins,
      'losses': losses,
      'p': p,
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  if _CONFIG.value is None or _WORKDIR.value is None:
    raise app.UsageError('--config and --workdir are required.')
  # As experiments/reproduce.py: compiled programs cached across runs, one
  # CPU device per core (before JAX starts its backends).
  compile_cache.enable()
  host_devices.split_cpu(_CONFIG.value.sweep.get('cpu_devices', 0))
  try:
    run(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    sys.exit(f'val_size_study.py: error: {e}')


if __name__ == '__main__':
  # Flags are defined here, not on import, so tests and other scripts can
  # import this module's functions.
  _CONFIG = config_flags.DEFINE_config_file(
      'config', None, 'Config file, e.g. configs/val_size_study.py[:tiny].'
  )
  _WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
  app.run(main)
