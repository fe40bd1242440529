"""A gateway's routing in NumPy alone: read an exported router, route.

  unirouter export --router my_router --out router.json
  python examples/numpy_gateway.py router.json emb.npy --budget 0.002

Prints the chosen LLM of each prompt (rows of ``emb.npy``, embedded by the
router's encoder, ``router.json``'s ``encoder``), one per line. Imports
NumPy and :mod:`unirouter_jax.deploy.portable` only, never JAX: a gateway
can copy ``portable.py`` as it is, or port ``route_numpy`` (the rule is
stated in the file's ``rule``) to its own language.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from unirouter_jax.deploy import portable


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='numpy_gateway')
  parser.add_argument('router', help='router.json from `unirouter export`')
  parser.add_argument('embeddings', help='.npy [q, d] prompt embeddings')
  how = parser.add_mutually_exclusive_group()
  how.add_argument('--lambda', dest='lam', type=float, default=0.0)
  how.add_argument('--budget', type=float, help='target mean cost per query')
  args = parser.parse_args(argv)
  try:
    router = portable.load_json(args.router)
    lam = (
        args.lam
        if args.budget is None
        else portable.lambda_for_budget(router, args.budget)
    )
    choice_q = portable.route_numpy(router, np.load(args.embeddings), lam)
  except (OSError, ValueError) as e:
    print(f'numpy_gateway: error: {e}', file=sys.stderr)
    return 2
  for i in choice_q:
    print(router.llm_names[i])
  return 0


if __name__ == '__main__':
  sys.exit(main())
