"""CLIP byte-level BPE tokenizer, read from local files only.

A tokenizer directory holds `tokenizer.json`, or `vocab.json` and
`merges.txt` (the Hugging Face CLIP layout). Nothing is fetched from the hub.
"""

from __future__ import annotations

import collections
import os
from typing import Iterable, Sequence

import numpy as np
import tokenizers
import transformers

SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
_WORD_END = "</w>"


def _has_tokenizer_files(directory: str) -> bool:
  names = set(os.listdir(directory)) if os.path.isdir(directory) else set()
  return "tokenizer.json" in names or {"vocab.json", "merges.txt"} <= names


class Tokenizer:
  """Turns texts into fixed-length CLIP token ids.

  Attributes:
    vocab_size: number of token ids.
    sot_token_id / eot_token_id / pad_token_id: start-of-text, end-of-text
      and padding ids (CLIP pads with the end-of-text token).
  """

  def __init__(self, hf_tokenizer: transformers.CLIPTokenizer):
    self._hf = hf_tokenizer
    # A private copy: the transformers wrapper changes its backend's padding state.
    self._backend = tokenizers.Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    self._backend.no_padding()
    self._backend.no_truncation()
    self.vocab_size = len(hf_tokenizer)
    self.sot_token_id = hf_tokenizer.bos_token_id
    self.eot_token_id = hf_tokenizer.eos_token_id
    self.pad_token_id = hf_tokenizer.pad_token_id

  def encode(self, texts: str | Sequence[str], context_length: int = 77) -> np.ndarray:
    """Returns int32 [B, context_length]: SOT, text, EOT, then padding.

    Longer texts are truncated so that the EOT token is always kept.
    """
    if isinstance(texts, str):
      texts = [texts]
    if context_length < 2:
      raise ValueError(f"context_length {context_length} leaves no room for SOT and EOT")
    ids = np.full((len(texts), context_length), self.pad_token_id, np.int32)
    encodings = self._backend.encode_batch(list(texts), add_special_tokens=False)
    for row, encoding in enumerate(encodings):
      tokens = [self.sot_token_id, *encoding.ids[:context_length - 2], self.eot_token_id]
      ids[row, :len(tokens)] = tokens
    return ids

  def save(self, directory: str) -> None:
    """Writes the tokenizer files into `directory` (load them with load_tokenizer)."""
    self._hf.save_pretrained(directory)


def load_tokenizer(directory: str) -> Tokenizer:
  """Loads a CLIP BPE tokenizer from a local directory."""
  if not _has_tokenizer_files(directory):
    raise FileNotFoundError(
        f"no CLIP tokenizer in {directory!r}: expected tokenizer.json, or vocab.json and "
        "merges.txt (a Hugging Face CLIP model directory, or one written by "
        "jreid.models.build_local_tokenizer)")
  return Tokenizer(transformers.CLIPTokenizer.from_pretrained(directory, local_files_only=True))


def build_local_tokenizer(texts: Iterable[str], dst_dir: str, vocab_size: int) -> Tokenizer:
  """Trains a CLIP-style byte-level BPE on `texts` and saves it in `dst_dir`.

  The vocabulary is laid out as CLIP's: the 256 byte symbols, the same with
  the end-of-word marker, one token per merge, then SOT and EOT. Training is
  deterministic (ties go to the lexicographically smallest pair).

  Args:
    texts: training texts (e.g. the captions of the synthetic set).
    dst_dir: directory to write; load_tokenizer(dst_dir) reads it back.
    vocab_size: wanted vocabulary size, at least 514; a small corpus may
      yield fewer merges (pairs seen at least twice) and so fewer tokens.

  Returns:
    The trained tokenizer.
  """
  alphabet = sorted(tokenizers.pre_tokenizers.ByteLevel.alphabet())
  base = alphabet + [symbol + _WORD_END for symbol in alphabet]
  if vocab_size < len(base) + 2:
    raise ValueError(f"vocab_size {vocab_size} < {len(base) + 2} (byte symbols and SOT/EOT)")
  # The same normalisation and pre-tokenisation as the CLIP tokenizer that reads the result.
  pipeline = transformers.CLIPTokenizer().backend_tokenizer
  words = collections.Counter()
  for text in texts:
    pieces = pipeline.pre_tokenizer.pre_tokenize_str(pipeline.normalizer.normalize_str(text))
    words.update((*word[:-1], word[-1] + _WORD_END) for word, _ in pieces)
  merges = _learn_merges(words, vocab_size - len(base) - 2)
  vocab = base + ["".join(pair) for pair in merges] + [SOT_TOKEN, EOT_TOKEN]
  tokenizer = Tokenizer(transformers.CLIPTokenizer(
      vocab={token: i for i, token in enumerate(vocab)}, merges=merges))
  os.makedirs(dst_dir, exist_ok=True)
  tokenizer.save(dst_dir)
  return tokenizer


def _merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
  out, i = [], 0
  while i < len(word):
    if word[i:i + 2] == pair:
      out.append(word[i] + word[i + 1])
      i += 2
    else:
      out.append(word[i])
      i += 1
  return tuple(out)


def _learn_merges(words: collections.Counter, max_merges: int) -> list[tuple[str, str]]:
  """Greedy BPE: repeatedly merges the most frequent adjacent pair (seen twice or more)."""
  symbols = list(words)
  counts = list(words.values())
  pair_counts = collections.Counter()
  holders = collections.defaultdict(set)  # pair -> indices of words that had it
  for i, word in enumerate(symbols):
    for pair in zip(word, word[1:]):
      pair_counts[pair] += counts[i]
      holders[pair].add(i)
  merges = []
  while len(merges) < max_merges and pair_counts:
    best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
    if pair_counts[best] < 2:
      break
    merges.append(best)
    for i in sorted(holders.pop(best)):
      old, new = symbols[i], _merge_pair(symbols[i], best)
      for pair in zip(old, old[1:]):
        pair_counts[pair] -= counts[i]
      for pair in zip(new, new[1:]):
        pair_counts[pair] += counts[i]
        holders[pair].add(i)
      symbols[i] = new
    for pair in [pair for pair, count in pair_counts.items() if count <= 0]:
      del pair_counts[pair]
  return merges
