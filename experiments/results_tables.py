r"""Prints RESULTS.md tables from finished runs (ours next to the paper's).

  python experiments/results_tables.py --workdir=results/bundled \
      [--val_size=results/val_size]

Reads ``<workdir>/<dataset>/summary.json`` of every dataset run there and,
optionally, the validation-size study; prints Markdown: our numbers, the
paper's (method.md section 4), and the per-claim checks (sign tests).
"""

from __future__ import annotations

import json
import pathlib

from absl import app, flags

from unirouter_jax.shell import report

_WORKDIR = flags.DEFINE_string('workdir', 'results/bundled', 'Run to read.')
_VAL_SIZE = flags.DEFINE_string('val_size', None, 'Val-size study workdir.')

# method.md section 4: dynamic pool, 400 trials, Gecko embeddings.
PAPER = {
    'EmbedLLM': {
        'zero_router': (0.607, 0.285, 0.875),
        'knn': (0.636, 0.298, 0.461),
        'uniroute_kmeans': (0.648, 0.307, 0.339),
        'uniroute_learned_map': (0.651, 0.308, 0.332),
        'mlp_oracle': (0.664, 0.314, 0.269),
        'matfac_oracle': (0.663, 0.313, 0.277),
    },
    'RouterBench': {
        'zero_router': (0.689, 0.320, 0.999),
        'knn': (0.707, 0.328, 0.997),
        'uniroute_kmeans': (0.712, 0.332, 0.994),
        'uniroute_learned_map': (0.711, 0.331, 0.996),
        'mlp_oracle': (0.723, 0.339, 0.952),
        'matfac_oracle': (0.720, 0.338, 0.995),
    },
    'SPROUT': {
        'zero_router': (0.820, 0.404, 1.0),
        'knn': (0.844, 0.418, 0.296),
        'uniroute_kmeans': (0.850, 0.421, 0.196),
        'uniroute_learned_map': (0.846, 0.420, 0.234),
        'mlp_oracle': (0.859, 0.427, 0.045),
        'matfac_oracle': (0.857, 0.426, 0.050),
    },
}
LABELS = report.LABELS


def _num(x, pct=False):
  if isinstance(x, str):
    return '∞' if x == 'inf' else x
  return f'{100 * x:.1f}%' if pct else f'{x:.3f}'


def _ci(row, key, pct=False):
  lo, hi = row[f'{key}_ci']
  return f'[{_num(lo, pct)}, {_num(hi, pct)}]'


def ours(summaries):
  out = []
  for s in summaries:
    out.append(
        f'#### {s["dataset"]}: {s["trials"]} trials, {len(s["llms"])} LLMs '
        f'({s["split"]["test_llms"]} unseen test LLMs per trial), '
        f'{s["num_prompts"]} prompts (N_val = {s["split"]["val_prompts"]}), '
        f'cost {s["cost_unit"]}\n'
    )
    out.append(
        '| Method | Area | Area(50%) | QNC | Peak | '
        'sign test vs UniRoute K-means (W/L/T, p) |'
    )
    out.append('|---|---|---|---|---|---|')
    for name, row in s['methods'].items():
      t = row.get('sign_test_vs_uniroute_kmeans')
      test = (
          (
              f'{t["wins"]}/{t["losses"]}/{t["ties"]}, p={t["p_value"]:.2g}'
              + (' (sig.)' if t['significant'] else '')
          )
          if t
          else '-'
      )
      out.append(
          f'| {LABELS.get(name, name)} | {_num(row["area"])} '
          f'{_ci(row, "area")} | {_num(row["area50"])} {_ci(row, "area50")} '
          f'| {_num(row["qnc"], True)} {_ci(row, "qnc", True)} | '
          f'{_num(row["peak"])} | {test} |'
      )
    out.append('')
  return '\n'.join(out)


def paper():
  out = [
      '| Method | ' + ' | '.join(f'{d} Area / A50 / QNC' for d in PAPER) + ' |',
      '|---|' + '---|' * len(PAPER),
  ]
  for name in PAPER['EmbedLLM']:
    cells = [
        f'{v[0]:.3f} / {v[1]:.3f} / {100 * v[2]:.1f}%'
        for v in (PAPER[d][name] for d in PAPER)
    ]
    out.append(f'| {LABELS[name]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(out)


def selected_k(summaries):
  out = [
      (
          '| Dataset | Method | candidates | mean test Area per candidate | '
          'times selected |'
      ),
      '|---|---|---|---|---|',
  ]
  for s in summaries:
    for name, h in s['hyperparameters'].items():
      if len(h['values']) > 1:
        means = h['test_area_mean']
        areas = (
            'fitted at the selected K only'
            if means is None
            else ', '.join(f'{a:.3f}' for a in means)
        )
        out.append(
            f'| {s["dataset"]} | {LABELS.get(name, name)} | {h["values"]} | '
            f'{areas} | {h["selected_count"]} |'
        )
  return '\n'.join(out)


def psi(summaries):
  out = []
  for s in summaries:
    if 'psi_similarity' in s:
      out.append(f'{s["dataset"]}: nearest LLM by centred psi cosine:')
      for name, v in s['psi_similarity'].items():
        out.append(f'- {name} -> {v["nearest"]} ({v["similarity"]:.2f})')
      out.append('')
  return '\n'.join(out)


def main(argv):
  del argv
  root = pathlib.Path(_WORKDIR.value)
  paths = sorted(root.glob('*/summary.json')) or [root / 'summary.json']
  summaries = [json.loads(p.read_text()) for p in paths]
  print('### Ours\n')
  print(ours(summaries))
  print('### The paper (method.md section 4)\n')
  print(paper())
  print('\n### Hyperparameter selection\n')
  print(selected_k(summaries))
  print('\n### psi neighbours\n')
  print(psi(summaries))
  if _VAL_SIZE.value:
    print('\n### Validation-size study\n')
    print(pathlib.Path(_VAL_SIZE.value, 'val_size.md').read_text())


if __name__ == '__main__':
  app.run(main)
