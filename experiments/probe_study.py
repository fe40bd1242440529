r"""Area of the test pool vs probe labels per new LLM, by probe strategy.

  python experiments/probe_study.py --config=configs/probe_study.py \
      --workdir=results/probe_study

Every (strategy, budget, psi rule) of ``config.probe`` is one
``estimators.probing.budgeted`` estimator; with UniRoute (K-means) (every
probe label, the reference) they run as one compiled protocol program,
resumable in chunks (``<workdir>/chunks``, ``metrics.jsonl``). The stopping
estimate of each (strategy, budget) is recomputed per trial at the K the
protocol selected (``regret.npz``: ``[trials, 2]`` per pair, the Area lost
and the gain left, summed over the test LLMs). Writes ``probe_study.json``
(per-trial Areas, mean estimates beside the realised gain, paired sign
tests against random per budget and the half-label tests),
``probe_study.md`` and ``probe_study.png``.
"""

from __future__ import annotations

import functools
import json
import pathlib
import sys
import time

# The repository root, so that config files can `from configs import ...`.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax
from ml_collections import config_flags

from experiments import reproduce
from unirouter_jax.estimators import builtin, probing
from unirouter_jax.evaluation import protocol, stats, views
from unirouter_jax.shell import chunks
from unirouter_jax.shell import workdir as workdir_lib

REFERENCE = 'uniroute_kmeans'


def study_estimators(probe_cfg) -> dict:
  """``{name: Estimator}``: the reference and every probed estimator."""
  out = {REFERENCE: builtin.uniroute_kmeans()}
  for rule in probe_cfg.psi_rules:
    for s in probe_cfg.strategies:
      strategy = _strategy(s, probe_cfg.active_rounds)
      for b in probe_cfg.budgets:
        e = probing.budgeted(strategy, int(b), psi_rule=rule)
        out[e.name] = e
    if rule != 'plain':  # plain with every label is the reference
      e = probing.budgeted('random', None, psi_rule=rule)
      out[e.name] = e
  return out


def _strategy(name, rounds):
  return probing.active(rounds) if name == 'active' else name


def _name(strategy, budget, rule, rounds):
  s = probing.get_strategy(_strategy(strategy, rounds)).name
  b = 'all' if budget is None else budget
  return f'probe_{s}_{b}{probing.PSI_RULES[rule]}'


@functools.lru_cache(maxsize=4)
def _regret_program(pairs, pad):
  """``run(splits, data, k_s) -> [s, len(pairs), 2]`` the stopping
  estimates (Area lost, gain left) summed over the test LLMs, at each
  trial's K (one clustering per trial)."""
  prompt_fit = builtin.uniroute_kmeans().fit.prompt_fit

  @jax.jit
  def run(splits, data, k_s):
    def one(args):
      split, k = args
      inputs = views.trial_inputs(data, split)
      clustering = prompt_fit(split.key, inputs, {'k': k}, pad)
      outs = [
          probing.choose_probes(s, b, split.key, inputs, clustering)[0]
          for s, b in pairs
      ]
      return jnp.stack(
          [jnp.stack([o.regret_m.sum(), o.gain_left_m.sum()]) for o in outs]
      )

    return lax.map(one, (splits, k_s))

  return run


def stopping_estimates(probe_cfg, data, splits, grids, result, pad):
  """``{(strategy, budget): [s, 2]}`` (Area lost, gain left) at the K
  selected in each trial."""
  strategies = [
      probing.get_strategy(_strategy(s, probe_cfg.active_rounds))
      for s in probe_cfg.strategies
  ]
  budgets = [int(b) for b in probe_cfg.budgets]
  pairs = tuple((s, b) for s in strategies for b in budgets)
  pairs += ((strategies[0], None),)
  k_grid = np.asarray(grids[REFERENCE]['k'])
  k_s = jnp.asarray(k_grid[np.asarray(result.methods[REFERENCE].selected)])
  r_sp = np.asarray(_regret_program(pairs, pad)(splits, data, k_s))
  return {(s.name, b): r_sp[:, i] for i, (s, b) in enumerate(pairs)}, k_s


def _paired(a_s, b_s, alpha):
  d = np.asarray(a_s) - np.asarray(b_s)
  wins, losses, _, p = stats.sign_test(a_s, b_s)
  se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
  return {
      'diff': float(d.mean()),
      'se': se,
      'wins': wins,
      'losses': losses,
      'p': p,
      'significant': stats.significant(p, alpha),
  }


def summarise(config, areas, regret, n_val) -> dict:
  """The study's table: mean Areas, paired tests against random."""
  p = config.probe
  rounds = p.active_rounds
  budgets = [int(b) for b in p.budgets]
  table = {'budgets': budgets, 'n_val': n_val, 'rules': {}}
  for rule in p.psi_rules:
    full = areas[
        REFERENCE if rule == 'plain' else _name('random', None, rule, rounds)
    ]
    rows = {'all': {'mean': float(np.mean(full))}}
    for s in p.strategies:
      for b in budgets:
        a = areas[_name(s, b, rule, rounds)]
        row = {'mean': float(np.mean(a)), 'se': float(np.std(a, ddof=1)
               / np.sqrt(len(a))) if len(a) > 1 else 0.0}  # fmt: skip
        if s != 'random':
          row['vs_random'] = _paired(
              a, areas[_name('random', b, rule, rounds)], p.alpha
          )
        row['vs_all'] = _paired(a, full, p.alpha)
        rows[f'{s}_{b}'] = row
    # Half the labels: active at B against random at 2B (or every label).
    half = {}
    for b in budgets:
      a = areas[_name('active', b, rule, rounds)] if 'active' in p.strategies \
          else None  # fmt: skip
      if a is None:
        break
      if 2 * b in budgets:
        half[f'active_{b}_vs_random_{2 * b}'] = _paired(
            a, areas[_name('random', 2 * b, rule, rounds)], p.alpha
        )
      if 2 * b >= n_val:
        half[f'active_{b}_vs_all'] = _paired(a, full, p.alpha)
        if rule != 'plain':  # against the paper's UniRoute, every label
          half[f'active_{b}_vs_uniroute_kmeans'] = _paired(
              a, areas[REFERENCE], p.alpha
          )
    if rule != 'plain':  # every label, this rule against UniRoute's psi
      half['all_vs_uniroute_kmeans'] = _paired(full, areas[REFERENCE], p.alpha)
    table['rules'][rule] = {'rows': rows, 'half_labels': half}
  table['stopping'] = {
      f'{s}_{"all" if b is None else b}': {
          'area_lost': float(np.mean(np.asarray(v)[:, 0])),
          'gain_left': float(np.mean(np.asarray(v)[:, 1])),
      }
      for (s, b), v in regret.items()
  }
  return table


def markdown(table, config, trials) -> str:
  p = config.probe
  lines = [
      (
          f'{trials} trials; mean test Area (± 2 s.e.); paired difference to '
          'random at the same budget, W/L and sign-test p (* = significant at '
          f'{p.alpha}).'
      ),
  ]
  for rule, t in table['rules'].items():
    rows = t['rows']
    head = '| labels | ' + ' | '.join(p.strategies)
    head += ''.join(f' | {s} − random' for s in p.strategies if s != 'random')
    lines += ['', f'**psi rule: {rule}**', '', head + ' |']
    lines.append('|---' * (2 * len(p.strategies)) + '|')
    for b in table['budgets']:
      cells = [f'{rows[f"{s}_{b}"]["mean"]:.4f} ± '
               f'{2 * rows[f"{s}_{b}"]["se"]:.4f}' for s in p.strategies]  # fmt: skip
      for s in p.strategies:
        if s == 'random':
          continue
        v = rows[f'{s}_{b}']['vs_random']
        star = '*' if v['significant'] else ''
        cells.append(
            f'{v["diff"]:+.4f} ({v["wins"]}/{v["losses"]}, p={v["p"]:.2g})'
            + star
        )
      lines.append(f'| {b} | ' + ' | '.join(cells) + ' |')
    lines.append(
        f'| all ({table["n_val"]}) | {rows["all"]["mean"]:.4f} |'
        + '  |' * (2 * len(p.strategies) - 2)
    )
    for k, v in t['half_labels'].items():
      star = '*' if v['significant'] else ''
      lines.append(
          f'- {k}: {v["diff"]:+.4f} ± {2 * v["se"]:.4f} '
          f'({v["wins"]}/{v["losses"]}, p={v["p"]:.2g}){star}'
      )
  lines += ['', '**Stopping estimate** (summed over the test LLMs; mean '
            'over trials): the estimated gain left by labelling every probe '
            'prompt, beside the Area actually gained by every label '
            f'({list(table["rules"])[0]} psi), and the Area lost to psi '
            'uncertainty (against the true psi):', '']  # fmt: skip
  head = ' | '.join(f'{s}: gain left / gained / lost' for s in p.strategies)
  lines.append(f'| labels | {head} |')
  lines.append('|---' * (1 + len(p.strategies)) + '|')
  st = table['stopping']
  rows = table['rules'][list(table['rules'])[0]]['rows']
  names = [probing.get_strategy(_strategy(s, p.active_rounds)).name
           for s in p.strategies]  # fmt: skip
  for b in table['budgets']:
    cells = []
    for s, n in zip(p.strategies, names, strict=True):
      e = st[f'{n}_{b}']
      gained = rows['all']['mean'] - rows[f'{s}_{b}']['mean']
      cells.append(
          f'{e["gain_left"]:.4f} / {gained:.4f} / {e["area_lost"]:.4f}'
      )
    lines.append(f'| {b} | ' + ' | '.join(cells) + ' |')
  e = st[f'{names[0]}_all']
  lines.append(f'| all | {e["gain_left"]:.4f} / 0 / {e["area_lost"]:.4f} |')
  return '\n'.join(lines) + '\n'


def plot(path, table, regret, config, title):
  """Top: Area vs labels per psi rule, and the stopping estimate beside
  the realised Area loss. Bottom: paired differences to random per rule,
  and random's Area per psi rule."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top

  p = config.probe
  rules = list(table['rules'])
  budgets = [int(b) for b in table['budgets']]
  xs = np.asarray(budgets + [table['n_val']], float)
  cols = len(rules) + 1
  fig, axes = plt.subplots(2, cols, figsize=(4.2 * cols, 7.2), squeeze=False)
  colours = {'random': 'tab:gray', 'stratified': 'tab:blue'}
  colours['active'] = 'tab:red'

  def axis(ax, ylabel, title):
    ax.set_xscale('log')
    ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    # Close budgets (e.g. half of N_val beside 200) would overlap flat.
    ax.tick_params(axis='x', labelsize=7, labelrotation=60)
    ax.set_xlabel('probe labels per new LLM')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)

  def band(ax, m, se, colour, label, style='o-'):
    m, se = np.asarray(m), np.asarray(se)
    x = xs[: len(m)]
    ax.plot(x, m, style, color=colour, label=label, ms=3)
    ax.fill_between(x, m - 2 * se, m + 2 * se, color=colour, alpha=0.15)

  for col, rule in enumerate(rules):
    rows = table['rules'][rule]['rows']
    full = rows['all']['mean']
    for s in p.strategies:
      band(
          axes[0, col],
          [rows[f'{s}_{b}']['mean'] for b in budgets] + [full],
          [rows[f'{s}_{b}']['se'] for b in budgets] + [0.0],
          colours.get(s),
          s,
      )
      if s != 'random':
        band(
            axes[1, col],
            [rows[f'{s}_{b}']['vs_random']['diff'] for b in budgets],
            [rows[f'{s}_{b}']['vs_random']['se'] for b in budgets],
            colours.get(s),
            f'{s} − random',
        )
    axes[0, col].axhline(full, color='k', ls='--', lw=0.8, label='all labels')
    axis(axes[0, col], 'mean test Area', f'psi: {rule}')
    axes[1, col].axhline(0.0, color='k', lw=0.8)
    axis(axes[1, col], 'paired Area difference', f'psi: {rule} (±2 s.e.)')
  ax = axes[0, -1]
  loss = table['rules'][rules[0]]['rows']
  every = regret[(probing.get_strategy(p.strategies[0]).name, None)]
  for s in p.strategies:
    n = probing.get_strategy(_strategy(s, p.active_rounds)).name
    est = [np.mean(np.asarray(regret[(n, b)])[:, 1]) for b in budgets]
    est.append(np.mean(np.asarray(every)[:, 1]))
    ax.plot(xs, est, 'o-', color=colours.get(s),
            label=f'{s}: estimated gain left', ms=3)  # fmt: skip
    real = [loss['all']['mean'] - loss[f'{s}_{b}']['mean'] for b in budgets]
    ax.plot(xs[:-1], real, 'x:', color=colours.get(s),
            label=f'{s}: Area gained by all labels')  # fmt: skip
  ax.axhline(0.0, color='k', lw=0.5)
  axis(ax, f'Area (summed over test LLMs; {rules[0]} psi)',
       'stopping estimate: gain left vs realised')  # fmt: skip
  ax = axes[1, -1]
  rule_colours = ('tab:purple', 'tab:orange', 'tab:green', 'tab:brown')
  for i, rule in enumerate(rules):
    rows = table['rules'][rule]['rows']
    band(
        ax,
        [rows[f'random_{b}']['mean'] for b in budgets] + [rows['all']['mean']],
        [rows[f'random_{b}']['se'] for b in budgets] + [0.0],
        rule_colours[i % len(rule_colours)],
        f'random, psi: {rule}',
        ('o-', 's--', '^:', 'd-.')[i % 4],
    )
  axis(ax, 'mean test Area', 'psi rules (random labels)')
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.stem + '.tmp.png')
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  tmp.replace(path)


def replot(workdir, config) -> None:
  """Rewrites the figure from ``probe_study.json`` and ``regret.npz``."""
  workdir = pathlib.Path(workdir)
  table = json.loads((workdir / 'probe_study.json').read_text())
  with np.load(workdir / 'regret.npz') as f:
    regret = {}
    for key in f.files:
      s, _, b = key.rpartition('_')
      regret[(s, None if b == 'None' else int(b))] = f[key]
  plot(workdir / 'probe_study.png', table, regret, config, _title(table))


def _title(table) -> str:
  return (
      f'{table["dataset"]}: mean test Area vs probe labels per new LLM '
      f'({table["trials"]} trials; bands ±2 s.e.)'
  )


def _check_workdir(workdir: pathlib.Path, config) -> None:
  """Refuses a workdir holding chunks of another study config."""
  path = workdir / 'probe_config.json'
  new = json.loads(config.to_json_best_effort())
  if path.exists() and any((workdir / 'chunks').glob('chunk_*.npz')):
    old = json.loads(path.read_text())
    if old != new:
      raise ValueError(
          f'{workdir} holds a probe study with another configuration; use '
          'another workdir or delete it.'
      )
  workdir.mkdir(parents=True, exist_ok=True)
  chunks.write_json(path, new)


def run(config, workdir, *, log=print) -> dict:
  """Runs (or resumes) the study; returns its table."""
  workdir = pathlib.Path(workdir)
  if 'random' not in config.probe.strategies:
    raise ValueError(
        'probe.strategies: expected random among them (every test is '
        f'against it), got {tuple(config.probe.strategies)}.'
    )
  spec = reproduce.to_spec(config)
  ds, data, _ = workdir_lib.load_routing_data(spec)
  n_val = protocol.split_sizes(data.num_prompts, data.num_llms, spec.protocol)[
      1
  ]
  budgets = tuple(int(b) for b in config.probe.budgets if int(b) < n_val)
  if config.probe.get('half_budget', False) and n_val > 1:
    budgets = tuple(sorted(set(budgets) | {-(-n_val // 2)}))
  if not budgets:
    raise ValueError(
        f'probe.budgets: every budget is at least N_val = {n_val} (the '
        'probe set); give smaller ones.'
    )
  if budgets != tuple(config.probe.budgets):
    log(f'N_val = {n_val}: budgets {budgets} (half: {-(-n_val // 2)}; the '
        'others label every prompt)')  # fmt: skip
    config = config.copy_and_resolve_references()
    with config.unlocked():
      config.probe.budgets = budgets
  estimators = study_estimators(config.probe)
  # A K grid of the config applies to the reference and to every probed
  # estimator (they take K from its selection).
  ks = np.asarray(spec.kmeans_k, np.int32)
  overrides = {name: {'k': ks} for name in estimators} if ks.size else None
  grids, pads = protocol.prepare(
      data, estimators, spec.protocol_config(), overrides
  )
  splits = workdir_lib.all_splits(spec, ds, data)
  _check_workdir(workdir, config)
  timing = {'compile_s': 0.0, 'run_s': 0.0}
  t0 = time.time()
  result, _ = workdir_lib.run_trials(
      spec,
      workdir,
      data,
      estimators,
      grids,
      splits,
      progress=config.output.progress,
      desc=f'{ds.name} probe study',
      timing=timing,
      log=log,
  )
  areas = {n: np.asarray(r.metrics.area) for n, r in result.methods.items()}
  t1 = time.time()
  regret_path = workdir / 'regret.npz'
  regret, k_s = stopping_estimates(
      config.probe, data, splits, grids, result, pads[REFERENCE]
  )
  np.savez(regret_path, **{f'{s}_{b}': v for (s, b), v in regret.items()})
  timing['stopping_s'] = time.time() - t1
  table = summarise(config, areas, regret, n_val)
  table.update(
      dataset=ds.name,
      trials=spec.num_trials,
      k_selected=np.asarray(k_s).tolist(),
      areas={n: a.tolist() for n, a in areas.items()},
      timing={k: round(v, 1) for k, v in timing.items()},
      seconds=round(time.time() - t0, 1),
  )
  chunks.write_json(workdir / 'probe_study.json', table)
  text = markdown(table, config, spec.num_trials)
  chunks.atomic_write(workdir / 'probe_study.md', lambda f: f.write(text))
  plot(
      workdir / 'probe_study.png',
      table,
      regret,
      config,
      _title(table),
  )
  log('\n' + text + f'\nPlot: {workdir / "probe_study.png"}')
  return table


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  if _CONFIG.value is None or _WORKDIR.value is None:
    raise app.UsageError('--config and --workdir are required.')
  try:
    run(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    sys.exit(f'probe_study.py: error: {e}')


if __name__ == '__main__':
  # Flags are defined here, not on import, so tests can import run().
  _CONFIG = config_flags.DEFINE_config_file(
      'config', None, 'Config file, e.g. configs/probe_study.py[:tiny].'
  )
  _WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
  app.run(main)
