"""Tokenisation and truncation policies for the encoder.

MiniLM reads at most ``max_len = 256`` tokens, two of which are ``[CLS]`` and
``[SEP]``, so at most ``max_len - 2`` content tokens survive. Which ones
survive is the truncation policy:

  ``head``       the first tokens (what sentence-transformers does),
  ``tail``       the last tokens (keeps the question of a few-shot prompt),
  ``head_tail``  the first ``HEAD_TAIL_HEAD`` tokens and the last
                 ``max_len - 2 - HEAD_TAIL_HEAD``.

Prompts that fit are identical under every policy.

Long inputs: the tokenizer is linear in the text length, which is wasteful for
a 50,000-character prompt of which only 254 tokens are kept. We tokenise a
character window at the relevant end(s), cut at a space so that the window's
tokens are exactly those of the full text (BERT pre-tokenisation splits on
spaces, and its normaliser works character by character), and fall back to the
whole text when the window does not hold enough tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tokenizers

POLICIES = ('head', 'tail', 'head_tail')
MAX_LEN = 256
HEAD_TAIL_HEAD = 64
CLS_ID = 101
SEP_ID = 102
PAD_ID = 0
# Characters per window when tokenising only the ends of a long text. A
# wordpiece is rarely longer than ~10 characters; the window doubles if not.
_CHARS_PER_TOKEN = 8


def check_policy(policy: str) -> str:
  if policy not in POLICIES:
    raise ValueError(f'policy: expected one of {POLICIES}, got {policy!r}.')
  return policy


def load_tokenizer(path: str) -> tokenizers.Tokenizer:
  """Loads ``tokenizer.json``, without its own truncation and padding."""
  tok = tokenizers.Tokenizer.from_file(str(path))
  tok.no_truncation()
  tok.no_padding()
  return tok


def truncate_ids(
    ids: np.ndarray, policy: str, max_len: int = MAX_LEN
) -> np.ndarray:
  """Applies a policy to content ids and adds ``[CLS]``/``[SEP]``.

  Args:
    ids: ``[t]`` content token ids (no special tokens).
    policy: one of ``POLICIES``.
    max_len: model context, special tokens included.

  Returns:
    ``[min(t, max_len - 2) + 2]`` int32 ids.
  """
  keep = max_len - 2
  ids = np.asarray(ids, np.int32)
  if ids.shape[0] > keep:
    if policy == 'head':
      ids = ids[:keep]
    elif policy == 'tail':
      ids = ids[ids.shape[0] - keep :]
    elif policy == 'head_tail':
      head = min(HEAD_TAIL_HEAD, keep)
      ids = np.concatenate([ids[:head], ids[ids.shape[0] - (keep - head) :]])
    else:
      check_policy(policy)
  return np.concatenate([[CLS_ID], ids, [SEP_ID]]).astype(np.int32)


def _head_ids(tok, text: str, need: int) -> list[int] | None:
  """First ``>= need`` content ids of ``text`` from a prefix, or None."""
  width = need * _CHARS_PER_TOKEN
  while 2 * width < len(text):
    cut = text.rfind(' ', 0, width)
    if cut > 0:
      ids = tok.encode(text[:cut], add_special_tokens=False).ids
      if len(ids) >= need:
        return ids
    width *= 2
  return None


def _tail_ids(tok, text: str, need: int) -> list[int] | None:
  """Last ``>= need`` content ids of ``text`` from a suffix, or None."""
  width = need * _CHARS_PER_TOKEN
  while 2 * width < len(text):
    cut = text.find(' ', len(text) - width)
    if 0 <= cut < len(text):
      ids = tok.encode(text[cut:], add_special_tokens=False).ids
      if len(ids) >= need:
        return ids
    width *= 2
  return None


def _is_long(text: str, keep: int) -> bool:
  return len(text) > 4 * keep * _CHARS_PER_TOKEN


def _content_ids(tok, text: str, policy: str, keep: int) -> list[int]:
  """Content ids sufficient to apply ``policy``; exact after truncation."""
  if _is_long(text, keep):
    # +1: more than `keep` tokens proves that truncation happens, so the
    # window's tokens are the ones the policy keeps.
    if policy == 'head':
      ids = _head_ids(tok, text, keep + 1)
      if ids is not None:
        return ids
    elif policy == 'tail':
      ids = _tail_ids(tok, text, keep + 1)
      if ids is not None:
        return ids
    else:
      head = min(HEAD_TAIL_HEAD, keep)
      ids_h = _head_ids(tok, text, head)
      ids_t = _tail_ids(tok, text, keep - head + 1)
      if ids_h is not None and ids_t is not None:
        return ids_h[:head] + ids_t[len(ids_t) - (keep - head) :]
  return tok.encode(text, add_special_tokens=False).ids


def tokenize(
    tok: tokenizers.Tokenizer,
    texts: Sequence[str],
    policy: str,
    max_len: int = MAX_LEN,
) -> list[np.ndarray]:
  """Tokenises ``texts`` and truncates each with ``policy``.

  Returns:
    ``n`` int32 arrays of ids, ``[CLS] ... [SEP]``, each at most ``max_len``.
  """
  check_policy(policy)
  keep = max_len - 2
  texts = list(texts)
  for i, t in enumerate(texts):
    if not isinstance(t, str):
      raise ValueError(f'texts[{i}]: expected str, got {type(t).__name__}.')
  is_long = [_is_long(t, keep) for t in texts]
  long_i = [i for i, x in enumerate(is_long) if x]
  short_i = [i for i, x in enumerate(is_long) if not x]
  out: list[np.ndarray | None] = [None] * len(texts)
  encs = tok.encode_batch([texts[i] for i in short_i], add_special_tokens=False)
  for i, e in zip(short_i, encs, strict=True):
    out[i] = truncate_ids(np.asarray(e.ids), policy, max_len)
  for i in long_i:
    ids = _content_ids(tok, texts[i], policy, keep)
    out[i] = truncate_ids(np.asarray(ids), policy, max_len)
  return out  # type: ignore[return-value]
