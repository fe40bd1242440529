"""Prints the load time of each bundled data set and the machine.

Run: ``python benchmarks/load_bench.py``. Target: under 2 s per set.
"""

import os
import platform
import time

from unirouter_jax import data


def main():
  print(
      f"machine: {platform.machine()} {platform.processor() or ''} "
      f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
      f"Python {platform.python_version()}"
  )
  for name in data.BUNDLED:
    start = time.perf_counter()
    ds = data.load(name)
    sec = time.perf_counter() - start
    print(
        f"{name:20s} n={ds.num_prompts:5d} m={ds.num_llms:3d} "
        f"cost={ds.cost_unit:14s} load={sec:.3f}s"
    )


if __name__ == "__main__":
  main()
