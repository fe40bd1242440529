"""``embed``: one entry point over any encoder, with an optional disk cache.

An encoder is any callable ``[n] texts -> [n, d] float32`` (``Encoder``), so a
user can bring their own model; ``"minilm"`` (or None) selects the bundled
all-MiniLM-L6-v2, loaded lazily on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from unirouter_jax.encoder import cache as cache_lib
from unirouter_jax.encoder import minilm, tokenize

Encoder = Callable[[Sequence[str]], np.ndarray]


def _resolve(encoder, policy: str | None) -> Encoder:
  if encoder is None or encoder == 'minilm':
    return minilm.load_minilm(policy=policy or minilm.DEFAULT_POLICY)
  if isinstance(encoder, minilm.MiniLMEncoder):
    return encoder if policy is None else encoder.with_policy(policy)
  if isinstance(encoder, str):
    raise ValueError(
        f"encoder: expected 'minilm' or a callable, got {encoder!r}."
    )
  if not callable(encoder):
    raise ValueError(f'encoder: expected a callable, got {type(encoder)}.')
  if policy is not None:
    raise ValueError(
        'policy: truncation policies apply to the built-in MiniLM encoder; '
        f'a custom encoder truncates itself (got policy={policy!r}).'
    )
  return encoder


def embed(
    texts: Sequence[str],
    encoder: Encoder | str | None = None,
    *,
    policy: str | None = None,
    cache_dir: str | None = None,
    cache_id: str | None = None,
) -> np.ndarray:
  """Embeds ``texts`` with ``encoder``.

  Args:
    texts: ``n`` strings.
    encoder: None or ``"minilm"`` (all-MiniLM-L6-v2), a ``MiniLMEncoder``, or
      any callable ``[n] texts -> [n, d]``.
    policy: truncation policy for MiniLM (``tokenize.POLICIES``); None uses
      ``DEFAULT_POLICY`` (or the encoder's own).
    cache_dir: if set, embeddings are read from / written to this folder.
    cache_id: identifies a custom encoder in the cache; defaults to its
      ``cache_id`` attribute (required with ``cache_dir`` if it has none).

  Returns:
    ``[n, d]`` float32.
  """
  if isinstance(texts, str):
    raise ValueError('texts: expected a sequence of str, got one str.')
  if policy is not None:
    tokenize.check_policy(policy)
  texts = list(texts)
  enc = _resolve(encoder, policy)
  if cache_dir is None or not texts:
    return _call(enc, texts)
  cid = cache_id or getattr(enc, 'cache_id', None)
  if cid is None:
    raise ValueError(
        'cache_id: a custom encoder needs cache_id= (or a `cache_id` '
        'attribute) to be cached.'
    )
  cache = cache_lib.EmbeddingCache(cache_dir, cid)
  rows, _ = cache.get(texts)
  todo = [i for i, r in enumerate(rows) if r is None]
  if todo:
    # Duplicate texts are encoded once.
    uniq = list(dict.fromkeys(texts[i] for i in todo))
    new_ud = _call(enc, uniq)
    cache.put(uniq, new_ud)
    where = {t: j for j, t in enumerate(uniq)}
    for i in todo:
      rows[i] = new_ud[where[texts[i]]]
  return np.stack(rows).astype(np.float32)


def _call(enc: Encoder, texts: list[str]) -> np.ndarray:
  out_nd = np.asarray(enc(texts), np.float32)
  if out_nd.ndim != 2 or out_nd.shape[0] != len(texts):
    raise ValueError(
        f'encoder output: expected [{len(texts)}, d], got {list(out_nd.shape)}.'
    )
  return out_nd
