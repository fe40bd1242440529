"""``unirouter`` sub-commands of onboarding a new LLM: probe-set, onboard.

  unirouter probe-set --router my_router --out probe.csv   # every prompt
  unirouter probe-set --router my_router --out next.csv --name new-llm \\
      --cost 0.002 --budget 20 --strategy active [--labels so_far.csv]
  unirouter onboard --router my_router --name new-llm --cost 0.002 \\
      --labels graded.csv [--batch 20] [--tolerance 0.002] [--max-labels N]

``probe-set --budget`` prints the stopping estimate with the labels so far
(``area_lost`` against the true ``psi``; ``gain_left``, the part that
labelling the rest of the probe set would remove) and writes the next
prompts to label (:func:`unirouter_jax.deploy.
onboarding.next_probes`); label them and pass them to ``add-llm`` (again as
more arrive) or to the next ``probe-set --labels``. ``onboard`` runs that
loop against a file of labels (e.g. a grader's output for every probe
prompt) and adds the LLM with only the labels it used
(:func:`unirouter_jax.deploy.onboarding.onboard`). Handlers return an exit
code and raise ``ValueError`` naming the flag on bad input; files and the
router directory are replaced atomically.
"""

from __future__ import annotations

import csv
import json
import pathlib
import sys

import numpy as np

STRATEGIES = ('random', 'stratified', 'active')


def register(subparsers) -> None:
  """Adds probe-set and onboard to an argparse ``subparsers`` object."""
  p = subparsers.add_parser(
      'probe-set', help='write the probe prompts (or the next ones to label)'
  )
  p.add_argument('--router', required=True)
  p.add_argument('--out', required=True, help='.csv, .json or .jsonl')
  p.add_argument(
      '--budget',
      type=int,
      help='write only the next N prompts to label for --name',
  )
  p.add_argument('--name', help='with --budget: the LLM being onboarded')
  p.add_argument(
      '--cost', type=float, help='with --budget: its cost (new LLMs)'
  )
  p.add_argument('--strategy', choices=STRATEGIES, default='active')
  p.add_argument(
      '--labels',
      help=(
          'with --budget: its labels so far (CSV prompt_id,quality or '
          'JSON; empty quality = not yet)'
      ),
  )
  p.add_argument('--seed', type=int, default=0, help='within-cluster order')
  p.set_defaults(func=probe_set_command)

  p = subparsers.add_parser(
      'onboard', help='label a new LLM batch by batch until the estimate stops'
  )
  p.add_argument('--router', required=True)
  p.add_argument('--name', required=True)
  p.add_argument('--cost', type=float, help='cost per query (new LLMs)')
  p.add_argument(
      '--labels',
      required=True,
      help='CSV prompt_id,quality or JSON: the labels to draw from',
  )
  p.add_argument('--strategy', choices=STRATEGIES, default='active')
  p.add_argument('--batch', type=int, default=20, help='prompts per round')
  p.add_argument(
      '--tolerance',
      type=float,
      help=(
          'stop once the Area the rest of the probe set is expected to add'
          ' is below this (default 0.002)'
      ),
  )
  p.add_argument('--max-labels', type=int, help='stop after N labels')
  p.add_argument(
      '--min-labels',
      type=int,
      help='never stop before N labels (default max(batch, 2 x clusters))',
  )
  p.add_argument('--seed', type=int, default=0)
  p.add_argument(
      '--dry-run',
      action='store_true',
      help='report only; leave the router as it is',
  )
  p.set_defaults(func=onboard_command)


def _print(obj) -> None:
  sys.stdout.write(json.dumps(obj, indent=2) + '\n')


def check_out(out, arg: str = '--out') -> None:
  """ValueError unless ``out`` names a .csv, .json or .jsonl file."""
  suffix = ''.join(pathlib.Path(out).suffixes[-1:]).lower()
  if suffix not in ('.csv', '.json', '.jsonl'):
    raise ValueError(f'{arg} {out}: expected a .csv, .json or .jsonl file.')


def write_prompts(out, ids, texts, *, arg: str = '--out') -> None:
  """The prompts as .csv (with an empty ``quality`` column to fill in),
  .json or .jsonl; atomically."""
  check_out(out, arg)
  out = pathlib.Path(out)
  suffix = out.suffix.lower()
  pairs = list(zip(ids, texts, strict=True))
  if suffix == '.csv':

    def write(f):
      w = csv.writer(f, lineterminator='\n')
      w.writerow(['prompt_id', 'prompt', 'quality'])
      w.writerows([i, t, ''] for i, t in pairs)

  elif suffix == '.json':
    body = [{'prompt_id': i, 'prompt': t} for i, t in pairs]

    def write(f):
      f.write(json.dumps(body, indent=2))

  else:

    def write(f):
      f.writelines(
          json.dumps({'prompt_id': i, 'prompt': t}) + '\n' for i, t in pairs
      )

  from unirouter_jax.shell import chunks  # noqa: PLC0415 (JAX)

  try:
    chunks.atomic_write(out, write)
  except OSError as e:
    raise ValueError(f'{arg} {out}: cannot write: {e.strerror}.') from e


def _labels(path, arg='--labels') -> dict[str, float]:
  """The labels of a file, rows without a quality dropped."""
  from unirouter_jax.deploy import input_files  # noqa: PLC0415

  got = input_files.read_labels(path, source=f'{arg} {path}')
  return {k: v for k, v in got.items() if not np.isnan(v)}


def _flagged(e: ValueError, flags: dict[str, str]) -> ValueError:
  """The library's message with its argument name as the flag."""
  text = str(e)
  for lib, flag in flags.items():
    if text.startswith(f'{lib}:'):
      return ValueError(f'{flag}{text[len(lib) :]}')
  return e


_FLAGS = {
    'probe_labels': '--labels',
    'labels': '--labels',
    'cost': '--cost',
    'name': '--name',
    'budget': '--budget',
    'batch': '--batch',
    'tolerance': '--tolerance',
    'max_labels': '--max-labels',
    'min_labels': '--min-labels',
}


def probe_set_command(args) -> int:
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415

  if args.budget is None:
    for flag in ('name', 'cost', 'labels'):
      if getattr(args, flag) is not None:
        raise ValueError(f'--{flag}: only used with --budget.')
    man = router_io.read_router_manifest(args.router)
    ids, texts = man['probe_ids'], man['probe_texts']
    write_prompts(args.out, ids, texts)
    _print({'probe_prompts': len(ids), 'out': str(args.out)})
    return 0
  if args.budget < 1:
    raise ValueError(f'--budget: expected an integer >= 1, got {args.budget}.')
  if not args.name:
    raise ValueError('--name: required with --budget (the LLM to label).')
  check_out(args.out)  # before anything slow
  labels = _labels(args.labels) if args.labels else {}
  from unirouter_jax.deploy import onboarding  # noqa: PLC0415

  router, _ = router_io.load_deployed(args.router)
  try:
    prop = onboarding.next_probes(
        router,
        args.name,
        args.budget,
        strategy=args.strategy,
        labels=labels,
        cost=args.cost,
        seed=args.seed,
    )
  except ValueError as e:
    raise _flagged(e, _FLAGS) from e
  write_prompts(args.out, prop.probe_ids, prop.probe_texts)
  _print({
      'name': args.name,
      'strategy': args.strategy,
      'labelled': prop.labelled,
      'area_lost': round(prop.estimate.area_lost, 6),
      'gain_left': round(prop.estimate.gain_left, 6),
      'probe_prompts': len(prop.probe_ids),
      'probe_set': len(router.probe_ids),
      'out': str(args.out),
  })
  return 0


def onboard_command(args) -> int:
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415
  from unirouter_jax.deploy import onboarding  # noqa: PLC0415

  table = _labels(args.labels)
  if not table:
    raise ValueError(f'--labels {args.labels}: no row has a quality.')
  tol = (
      onboarding.DEFAULT_TOLERANCE
      if args.tolerance is None
      else (args.tolerance)
  )
  router, calib = router_io.load_deployed(args.router)
  try:
    new, rep = onboarding.onboard(
        router,
        args.name,
        table,
        cost=args.cost,
        batch=args.batch,
        tolerance=tol,
        strategy=args.strategy,
        max_labels=args.max_labels,
        min_labels=args.min_labels,
        seed=args.seed,
    )
  except ValueError as e:
    raise _flagged(e, _FLAGS) from e
  written = bool(rep.labels) and not args.dry_run
  if written:
    router_io.save_router(args.router, new, calib)
  _print({
      'router': str(args.router),
      'name': args.name,
      'strategy': args.strategy,
      'stopped': rep.stopped,
      'tolerance': tol,
      'labels_used': len(rep.labels),
      'labels_available': len(table),
      'probe_set': len(router.probe_ids),
      'area_lost': round(rep.estimate.area_lost, 6),
      'gain_left': round(rep.estimate.gain_left, 6),
      'rounds': [
          {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()}
          for r in rep.rounds
      ],
      'unavailable': list(rep.unavailable),
      'router_written': written,
  })
  return 0
