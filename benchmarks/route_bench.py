"""Routing throughput on this machine: from embeddings, and from text.

  .venv/bin/python benchmarks/route_bench.py [--batch 1000000] [--texts 512]

From embeddings: a router with K=50 clusters and 50 LLMs over 384-d
embeddings (MiniLM's size) routes batches of ``--batch`` prompts with
``router.route`` (choice, every candidate's estimated error, cluster).
Target: over 1e6 prompts/s on CPU. End to end: ``router_io.route_texts``
with the bundled MiniLM encoder (skipped if its weights are missing).
"""

import argparse
import time

import jax
import numpy as np

from unirouter_jax.deploy import io as router_io
from unirouter_jax.deploy import router as router_lib


def _router(k=50, m=50, d=384, p=500, encoder=None):
  rng = np.random.default_rng(0)
  emb = rng.normal(size=(p + 2000, d)).astype(np.float32)
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  q = (rng.uniform(size=(p + 2000, m)) < 0.6).astype(np.float32)
  eid = ehash = ''
  if encoder is not None:
    _, eid, ehash = router_io.encoder_identity(encoder)
  return router_lib.fit_router(
      jax.random.key(0),
      emb,
      q,
      np.ones_like(q, bool),
      rng.uniform(0.1, 10, m).astype(np.float32),
      [f'llm{i}' for i in range(m)],
      train_idx=np.arange(p, p + 2000),
      probe_idx=np.arange(p),
      k=k,
      n_init=1,
      max_iter=10,
      encoder_id=eid or 'bench',
      encoder_hash=ehash,
  )


def _time(fn, repeats):
  jax.block_until_ready(fn())  # compile + warm up
  best = float('inf')
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - t)
  return best


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--batch', type=int, default=1_000_000)
  ap.add_argument('--texts', type=int, default=512)
  ap.add_argument('--repeats', type=int, default=5)
  args = ap.parse_args()
  print(f'devices: {jax.devices()}')
  router = _router()
  rng = np.random.default_rng(1)
  emb = rng.normal(size=(args.batch, 384)).astype(np.float32)
  emb_dev = jax.device_put(emb)
  for lam in (0.0, 0.05):
    t = _time(
        lambda lam=lam: router_lib.route(router, emb_dev, lam=lam).choice_q,
        args.repeats,
    )
    print(
        f'route from embeddings (K=50, m=50, d=384, batch {args.batch}, '
        f'lam={lam}): {args.batch / t:,.0f} prompts/s'
    )
  try:
    enc = router_io.default_encoder()
  except FileNotFoundError as e:
    print(f'end to end from text: skipped ({e})')
    return
  router = _router(encoder=enc)
  texts = [
      f'Question {i}: what is {i} times {i + 3}? Explain step by step.'
      * (1 + i % 4)
      for i in range(args.texts)
  ]
  t = _time(
      lambda: router_io.route_texts(
          router, texts, encoder=enc, lam=0.05
      ).choice_q,
      2,
  )
  print(
      f'route from text (MiniLM + route, {args.texts} prompts): '
      f'{args.texts / t:,.0f} prompts/s'
  )


if __name__ == '__main__':
  main()
