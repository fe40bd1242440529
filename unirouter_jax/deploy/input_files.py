"""Files an operator hands the router: prompt lists and probe labels.

* :func:`read_prompts`: prompts from ``.txt`` (one per line), ``.json`` (a
  list of strings or of objects with ``"prompt"``), ``.jsonl`` or ``.csv``
  (a column ``prompt``);
* :func:`read_labels`: an LLM's labels on the probe set, ``{prompt_id:
  quality}`` from a CSV (``prompt_id,quality``; an empty quality is a
  missing label) or a JSON object.

Bad input raises ``ValueError`` naming the file (as ``source``, e.g. the
command-line flag and path) and the row or item.
"""

from __future__ import annotations

import csv
import json
import pathlib


def read_table(path, *, source, columns, json_hint, csv_hint):
  """A two-column table from a ``.json`` object or a CSV with a header.

  Args:
    path: the file.
    source: how messages name it (None: the path).
    columns: ``(key, value)`` column names of the CSV.
    json_hint, csv_hint: how messages show the expected JSON object.

  Returns:
    ``(src, obj, None)`` for JSON (a non-empty dict), or ``(src, None,
    rows)`` for a CSV: ``[(line, key cell, value cell)]`` of its non-blank
    data rows.

  Raises:
    ValueError: naming the file on an unreadable or malformed table.
  """
  path = pathlib.Path(path)
  src = source or str(path)
  try:
    text = path.read_text()
  except OSError as e:
    raise ValueError(f'{src}: cannot read: {e.strerror}.') from e
  if path.suffix.lower() == '.json':
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f'{src}: invalid JSON: {e}.') from e
    if not isinstance(obj, dict) or not obj:
      raise ValueError(f'{src}: expected a non-empty object {json_hint}.')
    return src, obj, None
  rows = list(csv.reader(text.splitlines()))
  key, value = columns
  if not rows or key not in rows[0] or value not in rows[0]:
    raise ValueError(
        f'{src}: expected a CSV with a header {key},{value} (or a .json '
        f'{csv_hint}).'
    )
  i_key, i_value = rows[0].index(key), rows[0].index(value)
  out = []
  for r, row in enumerate(rows[1:], start=2):
    if not any(cell.strip() for cell in row):
      continue
    if len(row) <= max(i_key, i_value):
      raise ValueError(
          f'{src}: row {r}: expected {len(rows[0])} columns, got {len(row)}.'
      )
    out.append((r, row[i_key], row[i_value].strip()))
  return src, None, out


def read_labels(path, *, source: str | None = None) -> dict[str, float]:
  """``{prompt_id: quality}`` from a CSV (``prompt_id,quality``) or JSON.

  Raises:
    ValueError: naming the file and row on a malformed file, a duplicate id
      or a non-numeric quality.
  """
  src, obj, rows = read_table(
      path,
      source=source,
      columns=('prompt_id', 'quality'),
      json_hint='{prompt_id: quality}',
      csv_hint='{id: quality}',
  )
  out = {}
  if obj is not None:
    for k, v in obj.items():
      if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f'{src}: id {k!r}: expected a number, got {v!r}.')
      out[str(k)] = float(v)
    return out
  for r, pid, q in rows:
    if pid in out:
      raise ValueError(f'{src}: row {r}: duplicate prompt_id {pid!r}.')
    try:
      out[pid] = float(q) if q else float('nan')
    except ValueError as e:
      raise ValueError(
          f'{src}: row {r}, column quality: expected a number, got {q!r}.'
      ) from e
  if not out:
    raise ValueError(f'{src}: no labels.')
  return out


def read_prompts(path, *, source: str | None = None) -> list[str]:
  """Prompts from .txt (one per line), .json, .jsonl or .csv (``prompt``)."""
  path = pathlib.Path(path)
  src = source or str(path)
  try:
    text = path.read_text()
  except OSError as e:
    raise ValueError(f'{src}: cannot read: {e.strerror}.') from e
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
    raise ValueError(f'{src}: {e}.') from e
  if not isinstance(items, list):
    raise ValueError(f'{src}: expected a list of prompts.')
  prompts = [x.get('prompt') if isinstance(x, dict) else x for x in items]
  for i, x in enumerate(prompts):
    if not isinstance(x, str):
      raise ValueError(
          f'{src}: item {i + 1}: expected a string '
          f'(or an object with "prompt"), got {x!r}.'
      )
  if not prompts:
    raise ValueError(f'{src}: the file holds no prompts.')
  return prompts
