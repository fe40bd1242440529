"""Routing decisions as JSON: one record per prompt with every candidate.

* Numbers the router holds in float32 (costs, estimated qualities, scores,
  cost weights) are written by their shortest float32 representation, so a
  cost of 0.002 prints as ``0.002``, not ``0.0020000000949949026``
  (:func:`clean`); read back as float32, each is the router's value exactly.
* Candidates are listed as the rule ranks them (:mod:`~unirouter_jax.deploy.rule`):
  the choice first, then by score, then cost, then LLM index, so ties come
  in a fixed order and the first candidate is the choice.

:func:`dumps_json` writes ``{..summary, "results": [record, ...]}``;
:func:`dumps_jsonl` one record per line, for batches. :func:`budget_summary`
is the summary of a batch routed at a budget, :func:`summary_line` its one
line for ``stderr``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np


def clean(x) -> float:
  """``x`` rounded through float32's shortest decimal representation."""
  return float(np.format_float_positional(np.float32(x), unique=True, trim='-'))


def records(
    out, texts: Sequence[str] | None = None, *, top: int | None = None
) -> list[dict]:
  """One dict per prompt of a :class:`RouteOutput`: choice, cluster, lambda
  and the ``top`` best candidates (all by default) in the rule's order."""
  gamma_qm = np.asarray(out.gamma_qm, np.float32)
  cost_m = np.asarray(out.cost_m, np.float32)
  q, m = gamma_qm.shape
  lam_q = np.broadcast_to(np.asarray(out.lam, np.float32), (q,))
  # As the rule computes it: float32 product, then float32 sum.
  score_qm = gamma_qm + lam_q[:, None] * cost_m[None, :]
  choice_q = np.asarray(out.choice_q)
  cluster_q = np.asarray(out.cluster_q)
  index_m = np.arange(m)
  cost_c = [clean(c) for c in cost_m]
  rows = []
  for i in range(q):
    order = np.lexsort((index_m, cost_m, score_qm[i], index_m != choice_q[i]))
    rows.append({
        **({'prompt': texts[i]} if texts is not None else {}),
        'choice': out.llm_names[int(choice_q[i])],
        'cluster': int(cluster_q[i]),
        'lambda': clean(lam_q[i]),
        'candidates': [
            {
                'llm': out.llm_names[j],
                'est_quality': clean(1 - gamma_qm[i, j]),
                'cost': cost_c[j],
                'score': clean(score_qm[i, j]),
            }
            for j in order[:top]
        ],
    })
  return rows


def dumps_json(
    out,
    texts: Sequence[str] | None = None,
    *,
    top: int | None = None,
    summary: Mapping | None = None,
) -> str:
  """``{**summary, "results": records}`` as indented JSON."""
  body = {**(summary or {}), 'results': records(out, texts, top=top)}
  return json.dumps(body, indent=2)


def dumps_jsonl(
    out, texts: Sequence[str] | None = None, *, top: int | None = None
) -> str:
  """One JSON record per prompt per line (newline-terminated)."""
  return ''.join(json.dumps(r) + '\n' for r in records(out, texts, top=top))


def mean_cost(out) -> float:
  """Mean cost per prompt of the choices of a :class:`RouteOutput`."""
  cost_m = np.asarray(out.cost_m, np.float32)
  return clean(np.mean(cost_m[np.asarray(out.choice_q)], dtype=np.float64))


def budget_summary(
    report: Mapping, *, budget: float, achieved: float, source: Mapping, mixed
) -> dict:
  """The summary of a batch routed at ``budget``.

  Args:
    report: the calibration's ``Calibration.report()``.
    budget: the target mean cost per query.
    achieved: the batch's mean cost (:func:`mean_cost`).
    source: what it was calibrated on (``heldout.budget_calibration``).
    mixed: whether the two cost weights were mixed at random.
  """
  expected = report['mixed_cost'] if mixed else report['cost']
  return {
      'lambda': clean(report['lam']),
      'budget': {
          'target': clean(budget),
          'mean_cost': achieved,
          'within_budget': achieved <= budget * (1 + 1e-6),
          'calibrated_on': source['calibrated_on'],
          'calibration_prompts': source['calibration_prompts'],
          'calibration_mean_cost': clean(expected),
          'reached': report['reached'],
          'lambda': clean(report['lam']),
          'lambda_alt': clean(report['lam_alt']),
          'mix': clean(report['mix']),
          'mixed': bool(mixed),
      },
  }


def summary_line(summary: Mapping) -> str:
  """One line of a routing summary (cost weight, budget and costs)."""
  line = f'lambda {summary["lambda"]}'
  b = summary.get('budget')
  if b:
    line += (
        f'; budget {b["target"]}: mean cost {b["mean_cost"]} on these '
        f'prompts, {b["calibration_mean_cost"]} on the '
        f'{b["calibration_prompts"]} {b["calibrated_on"]} calibration '
        'prompts'
    )
  return line
