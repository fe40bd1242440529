"""Where a record sits in its file: 1-based line numbers for error messages.

Loaders read files with pandas or :mod:`json`, which forget line numbers. A
loader therefore hands its checks a *locator*: a function from the 0-based
record index (and, where it knows it, the column) to the location keywords of
:class:`~unirouter_jax.data.dataset.DataError`, e.g. ``{"file": "mine.csv",
"line": 3}``. Lines are 1-based, as an editor shows them: the CSV header is
line 1, so the first data row is line 2 unless blank lines come first or a
quoted field holds a newline (both are counted).

The file is re-read only when an error is raised, so a good load costs
nothing. Within a multi-line record the line is that of the named column
(CSV) or key (JSON array); otherwise the record's first line. Files without
lines (``.pkl``, ``.parquet``, JSON that is not an array of records) are
located by their 1-based ``row`` instead.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import pathlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# (record index, column or JSON key path or None) -> DataError keywords.
Where = Callable[..., dict[str, Any]]
_WS = re.compile(r"[ \t\n\r]*")


def _open_text(path: pathlib.Path):
  opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
      path.suffix, open
  )
  return opener(path, "rt", encoding="utf-8-sig", newline="")


def _blank(row: list[str]) -> bool:
  # pandas (skip_blank_lines=True) skips empty and whitespace-only lines.
  return not row or (len(row) == 1 and not row[0].strip())


def csv_line(path: pathlib.Path, r: int, column: str | None) -> int | None:
  """1-based line of data record ``r`` (of ``column``, if in the header)."""
  with _open_text(path) as f:
    reader = csv.reader(f)
    header, prev, k = None, 0, -1
    for row in reader:
      start, prev = prev + 1, reader.line_num
      if _blank(row):
        continue
      if header is None:
        header = row
        continue
      k += 1
      if k == r:
        if column not in header:
          return start
        before = row[: header.index(column)]
        return start + sum(v.count("\n") for v in before)
  return None


def jsonl_line(path: pathlib.Path, r: int) -> int | None:
  """1-based line of record ``r`` of a JSON-lines file (blank lines skipped)."""
  with _open_text(path) as f:
    k = -1
    for i, line in enumerate(f):
      k += bool(line.strip())
      if k == r and line.strip():
        return i + 1
  return None


def json_array_line(
    path: pathlib.Path, r: int, keys: Sequence[str] = ()
) -> int | None:
  """1-based line of element ``r`` of a top-level JSON array.

  With ``keys`` (a path of nested object keys), the line of the innermost
  key found inside the element.
  """
  with _open_text(path) as f:
    text = f.read()
  decoder = json.JSONDecoder()
  pos = _WS.match(text).end()
  if text[pos : pos + 1] != "[":
    return None
  pos += 1
  for k in range(r + 1):
    pos = _WS.match(text, pos).end()
    if text[pos : pos + 1] in ("]", ""):
      return None
    start = pos
    _, pos = decoder.raw_decode(text, pos)
    pos = _WS.match(text, pos).end()
    if text[pos : pos + 1] == ",":
      pos += 1
    if k == r:
      at = start
      for key in keys:
        m = re.compile(
            re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:"
        ).search(text, at, pos)
        if m is None:
          break
        at = m.start()
      return text.count("\n", 0, at) + 1
  return None


def _line(path: pathlib.Path, r: int, field: Any) -> int | None:
  name = path.name
  try:
    if ".csv" in name:
      return csv_line(path, r, field if isinstance(field, str) else None)
    if ".jsonl" in name:
      return jsonl_line(path, r)
    if ".json" in name:
      keys = (
          () if field is None else [field] if isinstance(field, str) else field
      )
      return json_array_line(path, r, keys)
  except (OSError, UnicodeDecodeError, csv.Error, ValueError):
    return None
  return None


def locator(
    path: str | pathlib.Path, index_i: Sequence[int] | None = None
) -> Where:
  """Returns ``where(i, field=None)`` locating record ``index_i[i]`` of path.

  Args:
    path: the file the records were read from.
    index_i: ``[i]`` 0-based record index per checked item; None = identity.

  Returns:
    ``where(i, field=None) -> {"file": str(path), "line": L}`` (or ``"row":
    r + 1`` where the file has no lines). ``field`` is the CSV column or the
    JSON key (path) holding the bad value.
  """
  path = pathlib.Path(path)

  def where(i: int, field: Any = None) -> dict[str, Any]:
    r = int(i if index_i is None else index_i[i])
    line = _line(path, r, field)
    if line is None:
      return {"file": str(path), "row": r + 1}
    return {"file": str(path), "line": line}

  return where


def concat(wheres: Sequence[Where], lengths: Sequence[int]) -> Where:
  """Locator over records concatenated from several files, in order."""
  ends = np.cumsum(np.asarray(lengths, dtype=np.int64))

  def where(i: int, field: Any = None) -> dict[str, Any]:
    part = int(np.searchsorted(ends, i, side="right"))
    start = 0 if part == 0 else int(ends[part - 1])
    return wheres[part](int(i) - start, field)

  return where


def fixed(**where_kw: Any) -> Where:
  """A locator that only names the file (no line or row is known)."""
  return lambda i, field=None: dict(where_kw)
