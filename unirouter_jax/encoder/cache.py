"""A content-addressed on-disk cache of embeddings.

An entry's key is ``sha256(encoder_id + "\\0" + text)``, where the encoder id
names everything besides the text that determines the vector (for MiniLM:
model id, weights sha256, truncation policy, context length). Each entry is a
``.npy`` file of ``[d]`` float32 under ``root/<key[:2]>/<key>.npy``, written to
a temporary file in the same folder and renamed (``os.replace`` is atomic), so
a crash or a concurrent writer never leaves a half-written entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class EmbeddingCache:
  """Embeddings of one encoder, stored under ``root``.

  Attributes:
    root: cache folder (created on the first write).
    encoder_id: identifies the encoder configuration (see module docstring).
  """

  root: str
  encoder_id: str

  def key(self, text: str) -> str:
    data = (
        self.encoder_id.encode() + b'\0' + text.encode('utf-8', 'surrogatepass')
    )
    return hashlib.sha256(data).hexdigest()

  def _path(self, key: str) -> str:
    return os.path.join(self.root, key[:2], f'{key}.npy')

  def get(self, texts: Sequence[str]) -> tuple[list[np.ndarray | None], int]:
    """Looks up ``texts``; returns ``n`` vectors (None where absent), hits."""
    out: list[np.ndarray | None] = []
    for t in texts:
      p = self._path(self.key(t))
      try:
        out.append(np.load(p, allow_pickle=False))
      except (FileNotFoundError, ValueError, OSError):
        out.append(None)  # Absent or unreadable: recompute and overwrite.
    return out, sum(x is not None for x in out)

  def put(self, texts: Sequence[str], emb_nd: np.ndarray) -> None:
    """Stores ``[n, d]`` rows for ``texts`` atomically."""
    emb_nd = np.asarray(emb_nd, np.float32)
    if emb_nd.ndim != 2 or emb_nd.shape[0] != len(texts):
      raise ValueError(
          f'emb_nd: expected [{len(texts)}, d], got {list(emb_nd.shape)}.'
      )
    for t, row_d in zip(texts, emb_nd, strict=True):
      p = self._path(self.key(t))
      os.makedirs(os.path.dirname(p), exist_ok=True)
      fd, tmp = tempfile.mkstemp(dir=os.path.dirname(p), suffix='.tmp')
      try:
        with os.fdopen(fd, 'wb') as f:
          np.save(f, row_d, allow_pickle=False)
        os.replace(tmp, p)
      except BaseException:
        if os.path.exists(tmp):
          os.remove(tmp)
        raise
