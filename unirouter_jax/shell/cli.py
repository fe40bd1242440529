"""The ``unirouter`` console command.

  unirouter evaluate --data PATH_OR_BUNDLED_NAME [--format F] \
      [--embeddings E.npy] [--methods M ...] [--trials N] \
      [--test-llm-fraction F] [--val-fraction F] [--seed S] --out DIR

``evaluate`` runs the held-out-LLM protocol of the paper (method.md
section 3) on a bundled dataset or the user's data (the wide or long CSV of
``docs/data_formats.md``, or an upstream format) and writes
``DIR/summary.json``, ``DIR/results.md``, ``DIR/metrics.jsonl`` and
``DIR/plots/*.png``; rerunning with the same arguments resumes. Embeddings
are computed with the default encoder (and cached) unless ``--embeddings``
gives a ``.npy`` with one row per prompt, in file order.

Bad input (unknown method, missing file, malformed CSV, ``--trials 0``)
prints one line, ``unirouter: error: ...``, and exits with status 2.

Flags are kebab-case (``--test-llm-fraction``); the snake-case spellings of
earlier releases (``--test_llm_fraction``) are still accepted.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from unirouter_jax.shell import download, onboard_cli, router_cli

PROG = 'unirouter'


class _Parser(argparse.ArgumentParser):
  """An ArgumentParser whose errors are one line, without the usage."""

  def error(self, message):
    _fail(message)


def kebab_flags(argv: Sequence[str]) -> list[str]:
  """``--snake_case`` flags (earlier spellings) as ``--kebab-case``."""
  out = []
  for arg in argv:
    if arg.startswith('--') and arg != '--':
      name, eq, value = arg.partition('=')
      arg = name.replace('_', '-') + eq + value
    out.append(arg)
  return out


# Settings that errors from the library name as Python identifiers, and
# the flags a user typed for them.
_FLAG_OF = {
    'test_llm_fraction': '--test-llm-fraction',
    'val_fraction': '--val-fraction',
    'train_fraction': '--train-fraction',
    'num_trials': '--trials',
    'trial_batch_size': '--trial-batch-size',
    'chunk_size': '--chunk-size',
    'max_prompts': '--max-prompts',
    'epochs_scale': '--epochs-scale',
    'target_cost': '--budget',
    'allow_missing=True': '--allow-missing',
    'allow_missing': '--allow-missing',
}
_IDENT = re.compile(
    r'(?<![-\w])(' + '|'.join(map(re.escape, _FLAG_OF)) + r')(?![\w=])'
)


def as_flags(message: str) -> str:
  """``message`` with the library's setting names as the CLI's flags."""
  return _IDENT.sub(lambda m: _FLAG_OF[m.group(1)], message)


def _fail(message) -> None:
  line = ' '.join(as_flags(str(message)).split())
  print(f'{PROG}: error: {line}', file=sys.stderr)
  sys.exit(2)


def _int_at_least(text: str, low: int) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f'expected an integer, got {text!r}'
    ) from None
  if value < low:
    raise argparse.ArgumentTypeError(
        f'expected an integer >= {low}, got {value}'
    )
  return value


def _positive_int(text: str) -> int:
  return _int_at_least(text, 1)


def _nonnegative_int(text: str) -> int:
  return _int_at_least(text, 0)


def _fraction(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f'expected a number, got {text!r}'
    ) from None
  if not 0.0 < value < 1.0:
    raise argparse.ArgumentTypeError(
        f'expected a fraction in (0, 1), got {value}'
    )
  return value


def _methods(values: Sequence[str]) -> tuple[str, ...]:
  """Built-in names, or ``module:function`` factories of user estimators."""
  from unirouter_jax.estimators import builtin  # noqa: PLC0415 (JAX)

  known = tuple(builtin.builtin_estimators())
  names = tuple(n for v in values for n in v.split(',') if n)
  for name in names:
    if name not in known and ':' not in name:
      raise ValueError(
          f'--methods: unknown method {name!r}; known: {", ".join(known)}, '
          'or module:function of your own estimator'
      )
  return names


def _default_methods(pool: str) -> tuple[str, ...]:
  """The default methods; without training LLMs, those that need none."""
  from unirouter_jax.estimators import builtin  # noqa: PLC0415 (JAX)
  from unirouter_jax.shell import defaults  # noqa: PLC0415

  every = builtin.builtin_estimators()
  names = defaults.DEFAULT_METHODS
  if pool != 'unseen':
    return names
  kept = tuple(n for n in names if not every[n].needs_training_llms)
  dropped = [n for n in names if n not in kept]
  if dropped:
    print(
        f'{PROG}: --pool unseen: leaving out {", ".join(dropped)} (needs '
        'training LLMs)',
        file=sys.stderr,
    )
  return kept


def _check_csv_header(path: str) -> None:
  """A CSV must be wide (a ``prompt`` column) or long (a ``model`` one)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top

  try:
    cols = list(pd.read_csv(path, nrows=0).columns)
  except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
    raise ValueError(f'--data {path}: not a readable CSV ({e})') from None
  if 'prompt' not in cols and 'model' not in cols:
    shown = ', '.join(cols[:6]) + (', ...' if len(cols) > 6 else '')
    raise ValueError(
        f"--data {path}: no 'prompt' column (a wide CSV needs 'prompt' and "
        "one quality column per LLM; a long CSV needs 'prompt_id, prompt, "
        f"model, quality'); found: {shown}"
    )


def _add_evaluate(subparsers) -> None:
  from unirouter_jax.shell import defaults  # pylint: disable=g-import-not-at-top

  p = subparsers.add_parser(
      'evaluate',
      help='run the held-out-LLM protocol on a dataset',
      description=(
          'Runs every method over random splits of the LLMs (unseen test '
          'LLMs) and prompts, and writes DIR/summary.json, results.md, '
          'metrics.jsonl and plots/. Reruns resume.'
      ),
  )
  p.add_argument(
      '--data',
      required=True,
      help=(
          'a bundled name (routerbench_subset, llmrouter_dc, alpacaeval, '
          'alpacaeval_v1) or a path (wide/long CSV, JSONL, upstream formats)'
      ),
  )
  p.add_argument(
      '--format',
      default=None,
      help=(
          'force the format: wide, long, routerbench, embedllm, sprout, '
          'llmrouter_dc, alpacaeval (default: inferred)'
      ),
  )
  p.add_argument(
      '--embeddings',
      default=None,
      help=(
          'a .npy of prompt embeddings, one row per prompt in file order '
          '(default: the MiniLM encoder, cached)'
      ),
  )
  p.add_argument(
      '--cache-dir', default=None, help='encoder cache (default: its own)'
  )
  p.add_argument(
      '--methods',
      nargs='+',
      default=None,
      help=(
          'methods, space or comma separated (default: '
          f'{" ".join(defaults.DEFAULT_METHODS)}; with --pool unseen, those '
          'that need no training LLMs); the per-prompt Oracle and single '
          'LLMs are always reported'
      ),
  )
  p.add_argument(
      '--trials',
      type=_positive_int,
      default=None,
      help='random splits (paper: 400; default: 100, or all of --splits)',
  )
  p.add_argument(
      '--splits',
      default=None,
      help=(
          'a splits.json to evaluate on (as every run writes: a list of '
          '{"test_llms": [names], "train": [ids], "val": [ids], "test": '
          '[ids]}), so two implementations compare trial by trial'
      ),
  )
  p.add_argument(
      '--test-llm-fraction',
      type=_fraction,
      default=None,
      help=(
          "share of LLMs held out as unseen (default: the dataset's "
          'protocol, else 1/3)'
      ),
  )
  p.add_argument(
      '--val-fraction',
      type=_fraction,
      default=None,
      help=(
          "share of prompts in the probe set (default: the dataset's "
          'protocol, else 0.1)'
      ),
  )
  p.add_argument(
      '--train-fraction',
      type=_fraction,
      default=None,
      help='share of prompts that fit the prompt side (default 0.6)',
  )
  p.add_argument(
      '--dedup',
      action='store_true',
      default=None,
      help=(
          'merge prompts of identical text (default: user files keep every '
          'row; the bundled sets are merged as published); reported in '
          'summary.json under dedup'
      ),
  )
  p.add_argument(
      '--pool',
      choices=('dynamic', 'static', 'unseen'),
      default='dynamic',
      help=(
          'dynamic (default): held-out test LLMs unseen in training; static: '
          'train pool = test pool = all LLMs (paper Table 2); unseen: every '
          'LLM unseen, no training LLMs (the Math+Code setting: fixed K, '
          'K-NN k = sqrt(N_val), no LearnedMap)'
      ),
  )
  p.add_argument(
      '--kmeans-k',
      type=_positive_int,
      nargs='+',
      default=(),
      help='K candidates of the cluster routers (default: method.md 2.4)',
  )
  p.add_argument(
      '--knn-k',
      type=_positive_int,
      nargs='+',
      default=(),
      help='k candidates of K-NN (default: method.md 2.4)',
  )
  p.add_argument('--seed', type=int, default=0, help='PRNG seed')
  p.add_argument(
      '--chunk-size',
      type=_positive_int,
      default=25,
      help='trials per saved (resumable) chunk',
  )
  p.add_argument(
      '--max-prompts',
      type=int,
      default=0,
      help='> 0: a seeded random subset of the prompts',
  )
  p.add_argument(
      '--epochs-scale',
      type=float,
      default=1.0,
      help='multiplies the epochs of the trained methods',
  )
  p.add_argument(
      '--devices',
      type=_nonnegative_int,
      default=0,
      help=(
          'devices the trials are sharded over (default 0: all, every '
          "host's under jax.distributed)"
      ),
  )
  p.add_argument(
      '--cpu-devices',
      type=_nonnegative_int,
      default=0,
      help=(
          'XLA devices the CPU runs as (default 0: one per core, at most 8, '
          'unless JAX_NUM_CPU_DEVICES or XLA_FLAGS says; 1: one device)'
      ),
  )
  p.add_argument(
      '--trial-batch-size',
      type=_positive_int,
      default=None,
      help="trials vmapped together per device (default: the backend's)",
  )
  p.add_argument(
      '--compile-cache',
      default=None,
      help=(
          'folder of the persistent XLA compilation cache, or none (default: '
          '$JAX_COMPILATION_CACHE_DIR, else ~/.cache/unirouter_jax/xla)'
      ),
  )
  p.add_argument('--no-plots', action='store_true', help='skip the PNGs')
  p.add_argument('--quiet', action='store_true', help='no progress bar')
  p.add_argument('--out', required=True, help='output directory')
  p.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
  import os  # pylint: disable=g-import-not-at-top

  from unirouter_jax import data as data_lib  # pylint: disable=g-import-not-at-top

  # The input files first: a wrong path fails before JAX is imported.
  if args.format is None and args.data not in data_lib.BUNDLED:
    if not os.path.exists(args.data):
      raise FileNotFoundError(
          f'--data: no bundled dataset or file named {args.data!r} (bundled: '
          f'{", ".join(data_lib.BUNDLED)})'
      )
  if args.format is None and '.csv' in os.path.basename(args.data):
    _check_csv_header(args.data)
  if args.embeddings is not None and not os.path.exists(args.embeddings):
    raise FileNotFoundError(f'--embeddings: no such file {args.embeddings!r}')

  from unirouter_jax.evaluation import sweep  # pylint: disable=g-import-not-at-top
  from unirouter_jax.shell import (
      compile_cache,  # pylint: disable=g-import-not-at-top
      host_devices,  # pylint: disable=g-import-not-at-top
      report,  # pylint: disable=g-import-not-at-top
      workdir,  # pylint: disable=g-import-not-at-top
  )

  host_devices.split_cpu(args.cpu_devices)  # before JAX starts its backends
  cache = compile_cache.enable(args.compile_cache)
  import jax  # pylint: disable=g-import-not-at-top

  if args.devices > jax.device_count():
    raise ValueError(
        f'--devices {args.devices}: only {jax.device_count()} '
        f'{jax.default_backend()} device(s) here'
    )
  defaults = workdir.DATASET_PROTOCOL.get(
      args.format or args.data, workdir.DATASET_PROTOCOL['alpacaeval']
  )

  def pick(name):
    value = getattr(args, name)
    return defaults[name] if value is None else value

  methods = (
      _default_methods(args.pool)
      if args.methods is None
      else (_methods(args.methods))
  )
  trials = args.trials
  if args.splits is not None:
    from unirouter_jax.shell import splits_file  # pylint: disable=g-import-not-at-top

    count = splits_file.count(args.splits)
    if trials is not None and trials != count:
      raise ValueError(
          f'--trials {trials}: --splits {args.splits} has {count} trials'
      )
    trials = count
  spec = workdir.RunSpec.create(
      data=args.data,
      format=args.format,
      embeddings=args.embeddings,
      encoder_cache_dir=args.cache_dir,
      max_prompts=args.max_prompts,
      methods=methods,
      num_trials=100 if trials is None else trials,
      splits=args.splits,
      test_llm_fraction=pick('test_llm_fraction'),
      train_fraction=pick('train_fraction'),
      val_fraction=pick('val_fraction'),
      dedup=args.dedup,
      static_pool=args.pool == 'static',
      no_training_llms=args.pool == 'unseen',
      kmeans_k=tuple(args.kmeans_k),
      knn_k=tuple(args.knn_k),
      chunk_size=args.chunk_size,
      seed=args.seed,
      epochs_scale=args.epochs_scale,
      heatmap_k=0 if args.no_plots else 16,
      devices=args.devices,
      trial_batch_size=args.trial_batch_size
      or sweep.tuned_config(workdir.ProtocolConfig()).trial_batch_size,
  )
  summary = workdir.run(
      spec,
      args.out,
      progress=not args.quiet,
      plots=not args.no_plots,
      log=lambda s: print(s, file=sys.stderr),
  )
  print(report.markdown_table(summary))
  t = summary['timing']
  print(
      f'\nTime: load {t["load_s"]:.1f} s, compile {t["compile_s"]:.1f} s, '
      f'run {t["run_s"]:.1f} s on {t["devices"]} {t["backend"]} device(s); '
      + (f'compilation cache {cache}' if cache else 'no compilation cache')
  )
  print(
      f'\nWrote {os.path.join(args.out, "summary.json")}'
      + (
          ''
          if args.no_plots
          else f'; plots in {os.path.join(args.out, "plots")}/'
      )
  )
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(
      prog=PROG,
      description='Universal LLM routing (UniRoute) in JAX.',
  )
  sub = parser.add_subparsers(dest='command', metavar='COMMAND')
  sub.required = True
  _add_evaluate(sub)
  router_cli.register(sub)  # fit, add-llm, route, ...
  onboard_cli.register(sub)  # probe-set, onboard
  download.register(sub)  # download embedllm|routerbench|sprout
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Console entry point; returns the exit status (2 on bad input)."""
  parser = build_parser()
  args = parser.parse_args(kebab_flags(sys.argv[1:] if argv is None else argv))
  try:
    return args.func(args) or 0
  except (ValueError, FileNotFoundError) as e:  # DataError is a ValueError
    _fail(e)
  except KeyboardInterrupt:
    print(
        f'{PROG}: interrupted; rerun the same command to resume',
        file=sys.stderr,
    )
    return 130
  return 0


if __name__ == '__main__':
  sys.exit(main())
