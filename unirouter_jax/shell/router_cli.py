"""``unirouter`` sub-commands of the router: fit, probe-set, add-llm, route.

``register(subparsers)`` adds them to the ``unirouter`` argparse program
(:mod:`unirouter_jax.shell.cli`); each handler is ``args.func(args) -> exit code``
and raises ``ValueError`` (printed by the CLI as ``unirouter: error: ...``,
exit 2) on bad input. A router directory is only ever replaced atomically,
so a failed command leaves the previous router as it was.

  unirouter fit --data routerbench_subset --out my_router
  unirouter probe-set --router my_router --out probe.csv
  unirouter add-llm --router my_router --name new-llm --cost 0.002 \\
      --labels labels.csv            # prompt_id,quality  or  {id: quality}
  unirouter route --router my_router --prompt "Prove that ..." --lambda 10
"""

from __future__ import annotations

import csv
import json
import pathlib
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
  p.add_argument('--seed', type=int, default=0)
  p.set_defaults(func=fit_command)

  p = subparsers.add_parser('probe-set', help='write the probe prompts')
  p.add_argument('--router', required=True)
  p.add_argument('--out', required=True, help='.csv, .json or .jsonl')
  p.set_defaults(func=probe_set_command)

  p = subparsers.add_parser('add-llm', help='add an LLM from probe labels')
  p.add_argument('--router', required=True)
  p.add_argument('--name', required=True)
  p.add_argument('--cost', type=float, required=True, help='cost per query')
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

  p = subparsers.add_parser('set-cost', help="change an LLM's cost")
  p.add_argument('--router', required=True)
  p.add_argument('--name', required=True)
  p.add_argument('--cost', type=float, required=True)
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
  p.set_defaults(func=route_command)


def _print(obj) -> None:
  sys.stdout.write(json.dumps(obj, indent=2) + '\n')


def fit_command(args) -> int:
  import jax  # noqa: PLC0415  (keep `--help` fast)

  from unirouter_jax import data  # noqa: PLC0415
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415

  ds = data.load(args.data)
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
  router, info = router_io.fit_from_dataset(
      jax.random.key(args.seed),
      ds,
      emb,
      probe_size=args.probe_size,
      k=args.k,
      shrinkage=shrink,
      encoder_id=eid,
      encoder_hash=ehash,
  )
  router_io.save_router(args.out, router)
  _print({'router': str(args.out), 'llms': list(router.llm_names), **info})
  return 0


def _float(text: str, arg: str) -> float:
  try:
    return float(text)
  except ValueError as e:
    raise ValueError(
        f"{arg}: expected a number or 'auto', got {text!r}."
    ) from e


def probe_set_command(args) -> int:
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415

  man = router_io.read_router_manifest(args.router)
  ids, texts = man['probe_ids'], man['probe_texts']
  out = pathlib.Path(args.out)
  tmp = out.with_name(f'.{out.name}.tmp')
  suffix = ''.join(out.suffixes[-1:]).lower()
  if suffix == '.csv':
    with tmp.open('w', newline='') as f:
      w = csv.writer(f)
      w.writerow(['prompt_id', 'prompt', 'quality'])
      w.writerows([i, t, ''] for i, t in zip(ids, texts, strict=True))
  elif suffix == '.json':
    tmp.write_text(
        json.dumps(
            [
                {'prompt_id': i, 'prompt': t}
                for i, t in zip(ids, texts, strict=True)
            ],
            indent=2,
        )
    )
  elif suffix == '.jsonl':
    tmp.write_text(
        ''.join(
            json.dumps({'prompt_id': i, 'prompt': t}) + '\n'
            for i, t in zip(ids, texts, strict=True)
        )
    )
  else:
    raise ValueError(f'--out {out}: expected a .csv, .json or .jsonl file.')
  tmp.replace(out)
  _print({'probe_prompts': len(ids), 'out': str(out)})
  return 0


def read_labels(path) -> dict[str, float]:
  """``{prompt_id: quality}`` from a CSV (``prompt_id,quality``) or JSON.

  Raises:
    ValueError: naming the file and row on a malformed file, a duplicate id
      or a non-numeric quality.
  """
  path = pathlib.Path(path)
  try:
    text = path.read_text()
  except OSError as e:
    raise ValueError(f'--labels {path}: cannot read: {e.strerror}.') from e
  if path.suffix.lower() == '.json':
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f'--labels {path}: invalid JSON: {e}.') from e
    if not isinstance(obj, dict) or not obj:
      raise ValueError(
          f'--labels {path}: expected a non-empty object '
          '{prompt_id: quality}.'
      )
    out = {}
    for k, v in obj.items():
      if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(
            f'--labels {path}: id {k!r}: expected a number, got {v!r}.'
        )
      out[str(k)] = float(v)
    return out
  rows = list(csv.reader(text.splitlines()))
  if not rows or 'prompt_id' not in rows[0] or 'quality' not in rows[0]:
    raise ValueError(
        f'--labels {path}: expected a CSV with a header '
        'prompt_id,quality (or a .json {id: quality}).'
    )
  i_id, i_q = rows[0].index('prompt_id'), rows[0].index('quality')
  out = {}
  for r, row in enumerate(rows[1:], start=2):
    if not any(cell.strip() for cell in row):
      continue
    if len(row) <= max(i_id, i_q):
      raise ValueError(
          f'--labels {path}: row {r}: expected '
          f'{len(rows[0])} columns, got {len(row)}.'
      )
    pid, q = row[i_id], row[i_q].strip()
    if pid in out:
      raise ValueError(
          f'--labels {path}: row {r}: duplicate prompt_id {pid!r}.'
      )
    try:
      out[pid] = float(q) if q else float('nan')
    except ValueError as e:
      raise ValueError(
          f'--labels {path}: row {r}, column quality: expected '
          f'a number, got {q!r}.'
      ) from e
  if not out:
    raise ValueError(f'--labels {path}: no labels.')
  return out


def _update(args, fn) -> int:
  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415
  from unirouter_jax.deploy import router as router_lib  # noqa: PLC0415

  router = router_io.load_router(args.router)
  new = fn(router_lib, router)
  router_io.save_router(args.router, new)
  _print({
      'router': str(args.router),
      'llms': list(new.llm_names),
      'cost_m': np.asarray(new.cost_m).tolist(),
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
        lambda lib, r: lib.add_llm(
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
  return _update(args, lambda lib, r: lib.set_cost(r, args.name, args.cost))


def read_prompts(path) -> list[str]:
  """Prompts from .txt (one per line), .json, .jsonl or .csv (``prompt``)."""
  path = pathlib.Path(path)
  try:
    text = path.read_text()
  except OSError as e:
    raise ValueError(f'--prompts {path}: cannot read: {e.strerror}.') from e
  suffix = path.suffix.lower()
  try:
    if suffix == '.json':
      items = json.loads(text) if text.strip() else []
    elif suffix == '.jsonl':
      items = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif suffix == '.csv':
      rows = list(csv.DictReader(text.splitlines()))
      if rows and 'prompt' not in rows[0]:
        raise ValueError('expected a column named prompt')
      items = [r['prompt'] for r in rows]
    else:
      items = [line for line in text.splitlines() if line.strip()]
  except (json.JSONDecodeError, ValueError) as e:
    raise ValueError(f'--prompts {path}: {e}.') from e
  if not isinstance(items, list):
    raise ValueError(f'--prompts {path}: expected a list of prompts.')
  prompts = [x.get('prompt') if isinstance(x, dict) else x for x in items]
  for i, x in enumerate(prompts):
    if not isinstance(x, str):
      raise ValueError(
          f'--prompts {path}: item {i + 1}: expected a string '
          f'(or an object with "prompt"), got {x!r}.'
      )
  if not prompts:
    raise ValueError(f'--prompts {path}: the file holds no prompts.')
  return prompts


def route_command(args) -> int:
  import jax  # noqa: PLC0415

  from unirouter_jax.deploy import io as router_io  # noqa: PLC0415
  from unirouter_jax.deploy import router as router_lib  # noqa: PLC0415

  texts = None
  if args.prompts:
    texts = read_prompts(args.prompts)
  elif args.prompt:
    texts = list(args.prompt)
  router = router_io.load_router(args.router)
  if texts is not None:
    emb = router_io.embed_texts(router, texts)
  else:
    try:
      emb = np.load(args.embeddings, allow_pickle=False)
    except (OSError, ValueError) as e:
      raise ValueError(f'--embeddings {args.embeddings}: {e}.') from e
  if args.seed is not None and args.budget is None:
    raise ValueError('--seed: only used with --budget.')
  if args.budget is not None:
    key = None if args.seed is None else jax.random.key(args.seed)
    from unirouter_jax.deploy import calibration  # noqa: PLC0415

    out = calibration.route_budget(router, emb, args.budget, key=key)
  else:
    out = router_lib.route(router, emb, lam=args.lam or 0.0)
  sys.stdout.write(router_io.dumps_route(out, texts, top=args.top) + '\n')
  return 0
