"""``unirouter`` sub-commands of the router: fit, add-llm, remove-llm,
set-cost, route, export (probe-set and onboard:
:mod:`unirouter_jax.shell.onboard_cli`).

``register(subparsers)`` adds them to the ``unirouter`` argparse program
(:mod:`unirouter_jax.shell.cli`); each handler is ``args.func(args) -> exit code``
and raises ``ValueError`` (printed by the CLI as ``unirouter: error: ...``,
exit 2) on bad input. A router directory (and an exported file) is only
ever replaced atomically, so a failed command leaves the previous one as it
was.

  unirouter fit --data routerbench_subset --out my_router [--costs lat.csv]
      [--map kmeans|soft|learned]    # the cluster map (default kmeans)
  unirouter probe-set --router my_router --out probe.csv   # onboard_cli
  unirouter add-llm --router my_router --name new-llm --cost 0.002 \\
      --labels labels.csv            # prompt_id,quality  or  {id: quality}
  unirouter route --router my_router --prompt "Prove that ..." --lambda 10
  unirouter route --router my_router --prompts p.txt --budget 0.002 \\
      --format jsonl                 # calibrated on held-out prompts
  unirouter export --router my_router --out router.json
"""

from __future__ import annotations

import json
import sys

import numpy as np


def register(subparsers) -> None:
  """Adds the router sub-commands to an argparse ``subparsers`` object."""
  p = subparsers.add_parser('fit', help='fit a router on a dataset')
  p.add_argument('--data', required=True, help='bundled name or path')
  p.add_argument('--out', required=True, help='router directory to write')
  p.add_argument(
      '--embeddings',
      help=(
          '.npy of prompt embeddings (rows as '
          'the dataset); default: bundled or computed MiniLM ones'
      ),
  )
  p.add_argument('--encoder-id', help='id of the encoder of --embeddings')
  p.add_argument(
      '--probe-size', type=int, help='probe prompts (default 10%%, 20..500)'
  )
  p.add_argument('--k', type=int, help='clusters (default: selected)')
  p.add_argument('--shrinkage', default='0', help="pseudo-count, or 'auto'")
  p.add_argument(
      '--costs',
      help=(
          'CSV llm,cost or JSON {llm: cost} replacing the dataset costs '
          '(a price, a latency, ...)'
      ),
  )
  p.add_argument(
      '--calib-size',
      type=int,
      help=(
          'held-out prompts kept to calibrate budgets (default 10%%, '
          '20..500; 0: none)'
      ),
  )
  p.add_argument(
      '--map',
      dest='cluster_map',
      choices=('kmeans', 'soft', 'learned'),
      default='kmeans',
      help=(
          'cluster map: nearest centroid, soft k-means, or UniRoute LearnedMap'
      ),
  )
  p.add_argument(
      '--beta', type=float, help='--map soft: inverse temperature (selected)'
  )
  p.add_argument(
      '--arch', choices=('mlp', 'linear'), help='--map learned: network (mlp)'
  )
  p.add_argument('--epochs', type=int, help='--map learned: epochs (5)')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument(
      '--dedup',
      action='store_true',
      default=None,
      help='merge prompts of identical text (default: files keep every row)',
  )
  p.set_defaults(func=fit_command)

  p = subparsers.add_parser('add-llm', help='add an LLM (or more labels)')
  p.add_argument('--router', required=True)
  p.add_argument('--name', required=True, help='new, or one to add labels to')
  p.add_argument('--cost', type=float, help='cost per query (new LLMs)')
  p.add_argument(
      '--labels',
      required=True,
      help='CSV prompt_id,quality or JSON {prompt_id: quality}',
  )
  p.add_argument(
      '--allow-missing',
      action='store_true',
      help='accept labels for part of the probe set',
  )
  p.set_defaults(func=add_llm_command)

  p = subparsers.add_parser('remove-llm', help='remove an LLM')
  p.add_argument('--router', required=True)
  p.add_argument('--name', required=True)
  p.set_defaults(func=remove_llm_command)

  p = subparsers.add_parser('set-cost', help="change LLMs' costs")
  p.add_argument('--router', required=True)
  p.add_argument('--name', help='the LLM (with --cost)')
  p.add_argument('--cost', type=float, help='its new cost per query')
  p.add_argument(
      '--costs', help='CSV llm,cost or JSON {llm: cost} for every LLM'
  )
  p.set_defaults(func=set_cost_command)

  p = subparsers.add_parser('route', help='route prompts, print JSON')
  p.add_argument('--router', required=True)
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument('--prompt', action='append', help='a prompt (repeatable)')
  src.add_argument(
      '--prompts',
      help='.txt (one per line), .json, .jsonl or .csv (column prompt)',
  )
  src.add_argument('--embeddings', help='.npy [q, d] of the router encoder')
  how = p.add_mutually_exclusive_group()
  how.add_argument(
      '--lambda',
      dest='lam',
      type=float,
      help='cost weight (error per unit cost); default 0',
  )
  how.add_argument('--budget', type=float, help='target mean cost per query')
  p.add_argument(
      '--seed',
      type=int,
      help=(
          'with --budget: mix the two cost weights around the budget at random'
      ),
  )
  p.add_argument('--top', type=int, help='list only the N best candidates')
  p.add_argument(
      '--format',
      choices=('json', 'jsonl'),
      default='json',
      help='json: one object; jsonl: one line per prompt (summary on stderr)',
  )
  p.set_defaults(func=route_command)

  p = subparsers.add_parser(
      'export', help='write the router as portable JSON for gateways'
  )
  p.add_argument('--router', required=True)
  p.add_argument('--out', required=True, help='the .json file to write')
  p.add_argument(
      '--budget',
      type=float,
      action='append',
      help='a budget to calibrate (repeatable; default: 11 from cheapest)',
  )
  p.set_defaults(func=export_command)


def _print(obj) -> None:
  sys.stdout.write(json.dumps(obj, indent=2) + '\n')


def fit_command(args) -> int:
  import jax  # noqa: PLC0415  (keep `--help` fast)

  from unirouter_jax import data  # noqa: PLC0415
  from unirouter_jax.deploy import cost_table  # noqa: PLC0415
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415

  map_kw = _map_options(args)
  ds = data.load(args.data, dedup=args.dedup)
  costs = None
  if args.costs:  # checked before anything slow
    source = f'--costs {args.costs}'
    costs = cost_table.read(args.costs, source=source)
    cost_table.cost_vector(ds.llm_names, costs, source)
  if args.embeddings:
    if not args.encoder_id:
      raise ValueError(
          '--encoder-id: required with --embeddings (the id '
          'routing will check prompt encoders against).'
      )
    emb = data.load_embeddings_npy(args.embeddings, ds)
    eid, ehash = args.encoder_id, ''
  else:
    from unirouter_jax import encoder  # noqa: PLC0415

    enc = router_io.default_encoder()
    try:
      emb = encoder.bundled_embeddings(ds, enc.policy)
    except FileNotFoundError:
      emb = encoder.embed(list(ds.prompts), enc)
    _, eid, ehash = router_io.encoder_identity(enc)
  shrink = (
      None
      if args.shrinkage == 'auto'
      else _float(args.shrinkage, '--shrinkage')
  )
  try:
    router, info = router_io.fit_from_dataset(
        jax.random.key(args.seed),
        ds,
        emb,
        probe_size=args.probe_size,
        k=args.k,
        shrinkage=shrink,
        encoder_id=eid,
        encoder_hash=ehash,
        calib_size=args.calib_size,
        costs=costs,
        **map_kw,
    )
  except ValueError as e:  # the library's name of the setting, as a flag
    if str(e).startswith('calib_size:'):
      raise ValueError(f'--calib-size{str(e)[len("calib_size") :]}') from e
    raise
  calib = info.pop('calibration', None)
  router_io.save_router(args.out, router, calib)
  _print({
      'router': str(args.out),
      'llms': list(router.llm_names),
      'cost_m': _costs(router),
      'costs_from': args.costs or 'dataset',
      **info,
  })
  return 0


def _map_options(args) -> dict:
  """``fit_from_dataset``'s map arguments (ValueError: another map's flag)."""
  given = {'beta': args.beta, 'arch': args.arch, 'epochs': args.epochs}
  owner = {'beta': 'soft', 'arch': 'learned', 'epochs': 'learned'}
  for name, value in given.items():
    if value is not None and args.cluster_map != owner[name]:
      raise ValueError(f'--{name}: only used with --map {owner[name]}.')
  if args.epochs is not None and args.epochs < 1:
    raise ValueError(f'--epochs: expected an integer >= 1, got {args.epochs}.')
  given = {k: v for k, v in given.items() if v is not None}
  return {'cluster_map': args.cluster_map, **given}


def _costs(router) -> list[float]:
  from unirouter_jax.deploy.route_records import clean  # noqa: PLC0415

  return [clean(c) for c in np.asarray(router.cost_m)]


def _float(text: str, arg: str) -> float:
  try:
    return float(text)
  except ValueError as e:
    raise ValueError(
        f"{arg}: expected a number or 'auto', got {text!r}."
    ) from e


def read_labels(path) -> dict[str, float]:
  """``{prompt_id: quality}`` from a CSV (``prompt_id,quality``) or JSON
  (:func:`unirouter_jax.deploy.input_files.read_labels`)."""
  from unirouter_jax.deploy import input_files  # noqa: PLC0415

  return input_files.read_labels(path, source=f'--labels {path}')


def _update(args, fn) -> int:
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415
  from unirouter_jax.deploy import router as router_lib  # noqa: PLC0415

  # The held-out calibration prompts stay valid: they do not depend on LLMs.
  router, calib = router_io.load_deployed(args.router)
  new = fn(router_lib, router)
  router_io.save_router(args.router, new, calib)
  _print({
      'router': str(args.router),
      'llms': list(new.llm_names),
      'cost_m': _costs(new),
  })
  return 0


def add_llm_command(args) -> int:
  labels = read_labels(args.labels)
  missing = {k: v for k, v in labels.items() if np.isnan(v)}
  if missing and not args.allow_missing:
    raise ValueError(
        f'--labels {args.labels}: {len(missing)} rows without a '
        f'quality, e.g. {list(missing)[:5]} (or --allow-missing).'
    )
  try:
    return _update(
        args,
        lambda lib, r: lib.add_or_extend(
            r, args.name, args.cost, labels, allow_missing=args.allow_missing
        ),
    )
  except ValueError as e:
    raise ValueError(
        f'--labels {args.labels}: {e}' if 'probe_labels' in str(e) else str(e)
    ) from e


def remove_llm_command(args) -> int:
  return _update(args, lambda lib, r: lib.remove_llm(r, args.name))


def set_cost_command(args) -> int:
  from unirouter_jax.deploy import cost_table  # noqa: PLC0415

  pair = (args.name is not None, args.cost is not None)
  if args.costs is not None:
    if any(pair):
      raise ValueError(
          'set-cost: expected either --costs FILE or --name NAME --cost '
          'COST, not both.'
      )
    source = f'--costs {args.costs}'
    table = cost_table.read(args.costs, source=source)
    return _update(args, lambda _, r: cost_table.with_costs(r, table, source))
  if not all(pair):
    raise ValueError(
        'set-cost: expected --name NAME --cost COST, or --costs FILE.'
    )
  return _update(args, lambda lib, r: lib.set_cost(r, args.name, args.cost))


def read_prompts(path) -> list[str]:
  """Prompts from .txt (one per line), .json, .jsonl or .csv (``prompt``)
  (:func:`unirouter_jax.deploy.input_files.read_prompts`)."""
  from unirouter_jax.deploy import input_files  # noqa: PLC0415

  return input_files.read_prompts(path, source=f'--prompts {path}')


def _budget(value: float, arg: str = '--budget') -> float:
  if not (np.isfinite(value) and value >= 0):
    raise ValueError(f'{arg}: expected a finite cost >= 0, got {value!r}.')
  return value


def _note(text: str) -> None:
  sys.stderr.write(f'unirouter: note: {text}\n')


def route_command(args) -> int:
  import jax  # noqa: PLC0415

  from unirouter_jax.deploy import calibration, heldout  # noqa: PLC0415
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415
  from unirouter_jax.deploy import route_records as records  # noqa: PLC0415
  from unirouter_jax.deploy import router as router_lib  # noqa: PLC0415

  if args.seed is not None and args.budget is None:
    raise ValueError('--seed: only used with --budget.')
  lam = 0.0 if args.lam is None else args.lam
  if not (np.isfinite(lam) and lam >= 0):
    raise ValueError(f'--lambda: expected a finite value >= 0, got {lam!r}.')
  if args.budget is not None:
    _budget(args.budget)
  if args.top is not None and args.top < 1:
    raise ValueError(f'--top: expected an integer >= 1, got {args.top}.')
  texts = None
  if args.prompts:
    texts = read_prompts(args.prompts)
  elif args.prompt:
    texts = list(args.prompt)
  router, calib_set = router_io.load_deployed(args.router)
  if texts is not None:
    emb = router_io.embed_texts(router, texts)
  else:
    try:
      emb = np.load(args.embeddings, allow_pickle=False)
    except (OSError, ValueError) as e:
      raise ValueError(f'--embeddings {args.embeddings}: {e}.') from e
  notes = []
  if args.budget is None:
    out = router_lib.route(router, emb, lam=lam)
    summary = {'lambda': records.clean(lam)}
  else:
    cal, source = heldout.budget_calibration(
        router, calib_set, emb, args.budget
    )
    key = None if args.seed is None else jax.random.key(args.seed)
    out = calibration.route_calibrated(router, emb, cal, key=key)
    rep = cal.report()
    summary = records.budget_summary(
        rep,
        budget=args.budget,
        achieved=records.mean_cost(out),
        source=source,
        mixed=key is not None,
    )
    if 'note' in source:
      notes.append(source['note'])
    if not rep['reached']:
      notes.append(
          f'the budget {records.clean(args.budget)} is below the cheapest '
          f'routing ({records.clean(rep["cost"])} on the calibration '
          'prompts); every prompt goes to the cheapest LLM'
      )
  if notes:
    summary['note'] = '; '.join(notes)
  if args.format == 'jsonl':
    sys.stdout.write(records.dumps_jsonl(out, texts, top=args.top))
    sys.stderr.write(f'unirouter: route: {records.summary_line(summary)}\n')
  else:
    sys.stdout.write(
        records.dumps_json(out, texts, top=args.top, summary=summary) + '\n'
    )
  for text in notes:
    _note(text)
  return 0


def export_command(args) -> int:
  from unirouter_jax.deploy import export  # noqa: PLC0415
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415

  budgets = [_budget(b) for b in args.budget or []] or None
  router, calib = router_io.load_deployed(args.router)
  if budgets and calib is None:
    raise ValueError(
        f'--budget: the router {args.router} keeps no held-out calibration '
        'prompts, so no budget can be calibrated; refit it with `unirouter '
        'fit` (which keeps them), or export without --budget.'
    )
  try:
    doc = export.write_portable(args.out, router, calib, budgets=budgets)
  except OSError as e:
    raise ValueError(f'--out {args.out}: cannot write: {e.strerror}.') from e
  cal = doc['calibration']
  _print({
      'out': str(args.out),
      'llms': doc['llm_names'],
      'num_clusters': doc['num_clusters'],
      'cluster_map': doc['cluster_map']['kind'],
      'calibrated_budgets': (
          None if cal is None else [p['budget'] for p in cal['points']]
      ),
  })
  if cal is None:
    _note(
        f'the router {args.router} keeps no held-out calibration prompts; '
        'exported without calibrated lambdas (calibration: null)'
    )
  return 0
