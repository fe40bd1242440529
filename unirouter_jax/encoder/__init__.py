"""Prompt encoders: all-MiniLM-L6-v2 in Flax, and any user callable.

  from unirouter_jax import encoder
  emb_nd = encoder.embed(texts)                      # MiniLM, DEFAULT_POLICY
  emb_nd = encoder.embed(texts, my_model)            # any [n] -> [n, d]
  emb_nd = encoder.bundled_embeddings(ds, 'tail')    # precomputed rows

Importing this package does not load the weights; ``load_minilm`` (or the
first ``embed``) does.
"""

from unirouter_jax.encoder.bundled import bundled_embeddings
from unirouter_jax.encoder.cache import EmbeddingCache
from unirouter_jax.encoder.embed import Encoder, embed
from unirouter_jax.encoder.minilm import (
    DEFAULT_POLICY,
    MiniLMEncoder,
    load_minilm,
)
from unirouter_jax.encoder.tokenize import POLICIES
from unirouter_jax.encoder.weights import INSTALL_COMMAND, MODEL_ID

__all__ = [
    'DEFAULT_POLICY',
    'INSTALL_COMMAND',
    'MODEL_ID',
    'POLICIES',
    'EmbeddingCache',
    'Encoder',
    'MiniLMEncoder',
    'bundled_embeddings',
    'embed',
    'load_minilm',
]
