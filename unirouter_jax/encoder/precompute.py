"""Rebuilds the bundled embeddings of one dataset.

  python -m unirouter_jax.encoder.precompute --dataset routerbench_subset \
      --policy tail

writes ``unirouter_jax/datasets/embeddings/<dataset>.<policy>.npz`` (see
``bundled.py``). Takes about a minute per 10,000 short prompts on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unirouter_jax.encoder import bundled, minilm, tokenize


def precompute(name: str, policy: str, out=None) -> str:
  """Embeds every prompt of dataset ``name``; returns the path written."""
  from unirouter_jax import data  # noqa: PLC0415  (heavy, CLI only)

  ds = data.load(name)
  enc = minilm.load_minilm(policy=policy)
  texts = [str(t) for t in ds.prompts]
  ids = enc.tokenize(texts)
  # Count the prompts a policy truncates, on the untruncated token counts.
  full = tokenize.tokenize(enc.tokenizer, texts, 'head', max_len=1 << 30)
  n_trunc = int(sum(x.shape[0] > enc.max_len for x in full))
  t0 = time.time()
  emb_nd = enc.encode_ids(ids)
  seconds = time.time() - t0
  meta = {
      'dataset': name,
      'model_id': enc.model_id,
      'weights_sha256': enc.weights_sha256,
      'policy': policy,
      'max_len': enc.max_len,
      'head_tail_head': tokenize.HEAD_TAIL_HEAD,
      'num_prompts': len(texts),
      'num_truncated': n_trunc,
      # No prompt is truncated: every policy gives these rows.
      'identical_policies': (
          list(tokenize.POLICIES) if n_trunc == 0 else [policy]
      ),
      'tokens': int(sum(x.shape[0] for x in ids)),
      'seconds': round(seconds, 1),
      'dtype': 'float16',
  }
  path = out or bundled.npz_path(name, policy)
  bundled.write_npz(path, emb_nd, np.asarray(ds.prompt_ids), meta)
  return str(path)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--dataset', required=True)
  p.add_argument(
      '--policy', default=minilm.DEFAULT_POLICY, choices=tokenize.POLICIES
  )
  p.add_argument('--out', default=None, help='output path (default: bundled)')
  args = p.parse_args(argv)
  print(precompute(args.dataset, args.policy, args.out))


if __name__ == '__main__':
  main()
