"""Per-LLM costs from a table: a price, a latency, any number per query.

The router charges ``lam * cost_m``; nothing in it assumes the cost is
money. A table ``llm -> cost`` (a CSV with the header ``llm,cost`` or a
JSON object ``{llm: cost}``) replaces a dataset's costs at fit
(``unirouter fit --costs``) or a router's (``unirouter set-cost --costs``);
``lam`` is then in error per unit of that number (per second, say).

Every LLM of the router must have a cost; names the router does not have
are ignored (one table can serve several routers). Bad input raises
``ValueError`` naming the file, and the row or LLM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from unirouter_jax.deploy import input_files


def _number(value, where: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(f'{where}: expected a number, got {value!r}.')
  if not (math.isfinite(value) and value >= 0):
    raise ValueError(f'{where}: expected a finite cost >= 0, got {value!r}.')
  return float(value)


def read(path, *, source: str | None = None) -> dict[str, float]:
  """``{llm: cost}`` from a ``.json`` object or a CSV (``llm,cost``).

  Args:
    path: the file.
    source: how messages name it (default: the path).

  Raises:
    ValueError: naming the file (and row or LLM) on a malformed table, a
      duplicate LLM, or a cost that is not a finite number >= 0.
  """
  src, obj, rows = input_files.read_table(
      path,
      source=source,
      columns=('llm', 'cost'),
      json_hint='{llm: cost}',
      csv_hint='{llm: cost}',
  )
  if obj is not None:
    return {str(k): _number(v, f'{src}: LLM {k!r}') for k, v in obj.items()}
  out = {}
  for r, name, text_cost in rows:
    name = name.strip()
    if name in out:
      raise ValueError(f'{src}: row {r}: duplicate LLM {name!r}.')
    try:
      value = float(text_cost)
    except ValueError:
      raise ValueError(
          f'{src}: row {r}, column cost: expected a number, got {text_cost!r}.'
      ) from None
    out[name] = _number(value, f'{src}: row {r}, LLM {name!r}')
  if not out:
    raise ValueError(f'{src}: no costs.')
  return out


def cost_vector(
    llm_names: Sequence[str], table: Mapping[str, float], source: str = 'costs'
) -> np.ndarray:
  """``[m]`` float32 costs of ``llm_names`` from ``table``.

  Raises:
    ValueError: naming ``source`` and the first LLM without a cost.
  """
  missing = [n for n in llm_names if n not in table]
  if missing:
    more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
    raise ValueError(
        f'{source}: no cost for LLM {missing[0]!r}{more}; the table must give '
        f'a cost for every LLM of the router ({len(llm_names)}).'
    )
  return np.asarray([table[n] for n in llm_names], np.float32)


def with_costs(router, table: Mapping[str, float], source: str = 'costs'):
  """``router`` with every LLM's cost taken from ``table`` (a new router)."""
  cost_m = cost_vector(router.llm_names, table, source)
  return router.replace(cost_m=jnp.asarray(cost_m, router.cost_m.dtype))
