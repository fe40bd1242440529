"""Routing data: load benchmarks and user data into one :class:`Dataset`.

Host-side only (numpy and pandas); this package does not import jax.
"""

from unirouter_jax.data.alpacaeval import load_alpacaeval
from unirouter_jax.data.byod import load_long, load_wide_csv
from unirouter_jax.data.dataset import DataError, Dataset
from unirouter_jax.data.embeddings import load_embeddings_npy
from unirouter_jax.data.embedllm import load_embedllm
from unirouter_jax.data.llmrouter import load_llmrouter_dc
from unirouter_jax.data.prices import attach_costs_from_price_table
from unirouter_jax.data.registry import BUNDLED, load
from unirouter_jax.data.routerbench import load_routerbench
from unirouter_jax.data.sprout import load_sprout

__all__ = (
    "BUNDLED",
    "DataError",
    "Dataset",
    "attach_costs_from_price_table",
    "load",
    "load_alpacaeval",
    "load_embedllm",
    "load_embeddings_npy",
    "load_llmrouter_dc",
    "load_long",
    "load_routerbench",
    "load_sprout",
    "load_wide_csv",
)
