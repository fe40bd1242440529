"""Sequence packing: several prompts per padded row, a few fixed shapes.

Prompts are packed into rows of a few fixed lengths (``ROW_LENGTHS``); in a
row, attention is block-diagonal (a token attends only to its own prompt) and
positions restart at 0 for every prompt, so each prompt's embedding is the
one it gets alone (``bert.BertEncoder``). Compared with padding every prompt
to a bucket of lengths this

* wastes almost no compute on padding (rows are 99% full on AlpacaEval
  prompts, against 86% with 15 buckets 8-32 tokens apart), and
* compiles far fewer shapes: one per row length and power-of-two tail batch,
  at most 7 with the default row lengths and CPU batch size (3 for the 805
  AlpacaEval prompts, against 22 with buckets, whose compilation took 15.8 s
  of a 20.8 s first call).

Short prompts go into 128-token rows, not 256: block-diagonal attention
still costs ``row_len^2`` per row, and on 2 CPU cores 128 + 256 rows encode
AlpacaEval 8% faster than 256-token rows alone (64 + 128 + 256: no gain).

Axes: ``r`` rows, ``n`` prompts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

ROW_LENGTHS = (128, 256)


@dataclasses.dataclass(frozen=True)
class Batch:
  """Rows of one length, run as one ``[padded_rows, row_len]`` call.

  Attributes:
    row_len: tokens per row.
    padded_rows: rows of the compiled shape (``>= len(rows)``).
    rows: per row, the int64 prompt indices packed into it, in order.
  """

  row_len: int
  padded_rows: int
  rows: tuple[np.ndarray, ...]

  @property
  def slots(self) -> int:
    """Most prompts in one row: each has >= 2 tokens ([CLS], [SEP])."""
    return self.row_len // 2


def pack_rows(
    lengths_n: np.ndarray, row_lengths: Sequence[int] = ROW_LENGTHS
) -> tuple[list[list[int]], np.ndarray]:
  """Best-fit-decreasing packing of prompts into rows.

  Prompts are placed longest first, each into the open row with the least
  room that holds it; a new row has the smallest length in ``row_lengths``
  that holds the prompt. So long prompts open long rows and short prompts
  fill what those leave before opening short rows.

  Args:
    lengths_n: ``[n]`` token counts, each in ``[1, max(row_lengths)]``.
    row_lengths: increasing row lengths.

  Returns:
    ``(rows, row_len_r)``: per row, the prompt indices in it; ``[r]`` the
    length of each row.

  Raises:
    ValueError: a length outside ``[1, max(row_lengths)]``, or bad
      ``row_lengths``.
  """
  lengths_n = np.asarray(lengths_n, np.int64)
  row_lengths = tuple(int(x) for x in row_lengths)
  if not row_lengths or list(row_lengths) != sorted(set(row_lengths)):
    raise ValueError(
        f'row_lengths: expected increasing lengths, got {row_lengths}.'
    )
  if row_lengths[0] < 2:
    raise ValueError(f'row_lengths: expected >= 2, got {row_lengths}.')
  longest = row_lengths[-1]
  if lengths_n.size and (lengths_n.min() < 1 or lengths_n.max() > longest):
    raise ValueError(
        f'lengths_n: expected values in [1, {longest}], got '
        f'[{lengths_n.min()}, {lengths_n.max()}].'
    )
  # Open rows by free room: free_rows[c] holds rows with c tokens free, and
  # count_c[c] their number, so "least room >= s" is one vectorised search.
  free_rows: list[list[int]] = [[] for _ in range(longest + 1)]
  count_c = np.zeros(longest + 1, np.int64)
  rows: list[list[int]] = []
  row_len_r: list[int] = []
  for i in np.argsort(-lengths_n, kind='stable'):
    s = int(lengths_n[i])
    fits = np.flatnonzero(count_c[s:])
    if fits.size:
      room = s + int(fits[0])
      r = free_rows[room].pop()
      count_c[room] -= 1
    else:
      room = next(x for x in row_lengths if x >= s)
      r = len(rows)
      rows.append([])
      row_len_r.append(room)
    rows[r].append(int(i))
    free_rows[room - s].append(r)
    count_c[room - s] += 1
  return rows, np.asarray(row_len_r, np.int64)


def plan_batches(
    lengths_n: np.ndarray,
    tokens_per_batch: int,
    row_lengths: Sequence[int] = ROW_LENGTHS,
) -> list[Batch]:
  """Packs prompts into rows and groups the rows into batches.

  A batch of ``row_len``-token rows holds ``tokens_per_batch // row_len``
  rows (at least one), so every batch costs about the same. The last batch
  of each row length is padded to the next power of two of rows, not to a
  full batch, which bounds the number of compiled shapes to
  ``O(len(row_lengths) * log(rows per batch))``.

  Args:
    lengths_n: ``[n]`` token counts.
    tokens_per_batch: padded tokens per batch.
    row_lengths: increasing row lengths.

  Returns:
    The batches; every prompt is in exactly one row of one batch.
  """
  if tokens_per_batch < 1:
    raise ValueError(
        f'tokens_per_batch: expected >= 1, got {tokens_per_batch}.'
    )
  rows, row_len_r = pack_rows(lengths_n, row_lengths)
  plan = []
  for length in sorted(set(row_len_r.tolist())):
    same = [
        np.asarray(rows[r], np.int64)
        for r in np.flatnonzero(row_len_r == length)
    ]
    per = max(1, tokens_per_batch // length)
    for start in range(0, len(same), per):
      chunk = tuple(same[start : start + per])
      padded = per if len(chunk) == per else _next_pow2(len(chunk))
      plan.append(Batch(length, min(padded, per), chunk))
  return plan


def fill_batch(
    batch: Batch, ids: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The arrays of one batch for ``bert.BertEncoder``.

  Args:
    batch: a batch of ``plan_batches``.
    ids: all prompts' token ids (indexed by the batch's prompt indices).

  Returns:
    ``(ids_bl, segment_bl, position_bl)``, each ``[padded_rows, row_len]``
    int32: token ids (0 on padding), the prompt's slot in its row (``-1`` on
    padding) and the position within the prompt.
  """
  shape = (batch.padded_rows, batch.row_len)
  ids_bl = np.zeros(shape, np.int32)
  segment_bl = np.full(shape, -1, np.int32)
  position_bl = np.zeros(shape, np.int32)
  for j, row in enumerate(batch.rows):
    start = 0
    for slot, i in enumerate(row):
      n = ids[i].shape[0]
      ids_bl[j, start : start + n] = ids[i]
      segment_bl[j, start : start + n] = slot
      position_bl[j, start : start + n] = np.arange(n)
      start += n
  return ids_bl, segment_bl, position_bl


def _next_pow2(x: int) -> int:
  return 1 << max(0, int(x) - 1).bit_length()
