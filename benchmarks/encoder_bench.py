"""MiniLM encoder throughput (tokens/s) beside sentence-transformers.

  .venv/bin/python benchmarks/encoder_bench.py             # JAX only
  make bench-encoder-reference                              # side by side

Prompts are real and bundled: every AlpacaEval prompt (short, ~37 tokens,
a long tail) and RouterBench ARC-Challenge prompts (few-shot, all truncated to
256 tokens). Tokens are real tokens after head truncation (what
sentence-transformers does), special tokens included, padding excluded;
tokenisation is timed for both. The first (compiling) pass is not timed.

When ``sentence_transformers`` is importable (``make
bench-encoder-reference`` builds ``.venv-st`` with the CPU build of torch),
the same texts are encoded by ``SentenceTransformer`` on the same weights, in
the same process, alternating with the JAX encoder repeat by repeat, and the
script prints both rates, the paired ratio, and the cosine between the two
embeddings. Otherwise it prints the JAX rate against the figures the project
was given for sentence-transformers on a 2-core machine (3,600 and 4,700
tokens/s), which were not measured on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import numpy as np
from machine import machine

from unirouter_jax import data, encoder
from unirouter_jax.encoder import weights

GIVEN_TOKENS_PER_S = {'short': 3600.0, 'long256': 4700.0}


def _cases(n_short: int, n_long: int) -> dict[str, list[str]]:
  alpaca = [str(p) for p in data.load('alpacaeval').prompts]
  rb = data.load('routerbench_subset')
  arc = [
      str(p)
      for p, t in zip(rb.prompts, rb.tasks, strict=True)
      if t == 'arc-challenge'
  ]
  return {'short': alpaca[:n_short], 'long256': arc[:n_long]}


def _reference():
  """``texts -> [n, d]`` with sentence-transformers, or None if absent."""
  try:
    import sentence_transformers  # noqa: PLC0415  (optional)
    import torch  # noqa: PLC0415
  except ImportError:
    return None, None
  os.environ.setdefault('HF_HUB_OFFLINE', '1')
  model = sentence_transformers.SentenceTransformer(
      weights.model_dir(), device='cpu'
  )
  version = (
      f'sentence-transformers {sentence_transformers.__version__}, '
      f'torch {torch.__version__}, {torch.get_num_threads()} threads'
  )
  return (lambda texts: model.encode(texts, batch_size=32)), version


def _time(fn, texts) -> tuple[float, np.ndarray]:
  t0 = time.perf_counter()
  out = fn(texts)
  return time.perf_counter() - t0, np.asarray(out, np.float32)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--n_short', type=int, default=805)
  p.add_argument('--n_long', type=int, default=256)
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument(
      '--compare_threads',
      action='store_true',
      help='also time one stream of batches (threads=1), same run',
  )
  args = p.parse_args()
  enc = encoder.load_minilm(policy='head', progress=False)
  ref, ref_version = _reference()
  systems = {'jax': enc}
  if args.compare_threads:
    systems['jax threads=1'] = dataclasses.replace(enc, threads=1)
  if ref is not None:
    systems['sentence-transformers'] = ref
  m = machine()
  print(
      f"machine: {m['cpu']}, {m['cores']} cores, "
      f'load_avg_1min={os.getloadavg()[0]:.1f}; jax {m["jax"]} '
      f"({m['device']}); reference: {ref_version or 'not installed'}"
  )
  for name, texts in _cases(args.n_short, args.n_long).items():
    tokens = sum(x.shape[0] for x in enc.tokenize(texts))
    outs = {}
    for key, fn in systems.items():  # Warm-up: compiles every shape.
      outs[key] = _time(fn, texts)[1]
    seconds = {key: [] for key in systems}
    for _ in range(args.repeats):  # Interleaved: load changes hit all.
      for key, fn in systems.items():
        seconds[key].append(_time(fn, texts)[0])
    print(
        f'{name}: {len(texts)} prompts, {tokens} tokens '
        f'(mean {tokens / len(texts):.1f}), median of {args.repeats} '
        'interleaved repeats'
    )
    for key in systems:
      rates = [tokens / s for s in seconds[key]]
      line = (
          f'  {key:22s} {statistics.median(rates):8.0f} tokens/s '
          f'(min {min(rates):.0f}, max {max(rates):.0f})'
      )
      if key != 'jax':
        ratio = [
            a / b for a, b in zip(seconds[key], seconds['jax'], strict=True)
        ]
        line += f'; jax is x{statistics.median(ratio):.2f} of it (paired)'
      print(line)
    if ref is None:
      given = GIVEN_TOKENS_PER_S[name]
      rate = tokens / statistics.median(seconds['jax'])
      print(
          f'  x{rate / given:.2f} of the {given:.0f} tokens/s given for '
          'sentence-transformers on a 2-core machine (not measured here)'
      )
    else:
      a, b = outs['jax'], outs['sentence-transformers']
      cos = (a * b).sum(-1) / (
          np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
      )
      print(f'  cosine(jax, sentence-transformers): min {cos.min():.6f}')


if __name__ == '__main__':
  main()
