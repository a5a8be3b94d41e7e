"""Text inputs of the methods: which tokenizer a run uses, and tokenising captions or instructions.

A run whose config.model.init names a converted CLIP uses that model's
tokenizer. Otherwise a CLIP-style byte-level BPE is trained on the training
captions (jreid.models.build_local_tokenizer) and cached on disk under a hash
of the captions and the vocabulary size, so every run on the same data reads
the same tokenizer back. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from typing import Sequence

import numpy as np
from ml_collections import ConfigDict

from data_pipelines.records import Record
from jreid.models.checkpoint_io import TOKENIZER_DIR
from jreid.models.tokenizer import Tokenizer, build_local_tokenizer, load_tokenizer


def tokenizer_cache_dir() -> str:
  """Where local tokenizers are cached: $JREID_DATA_DIR/tokenizers, else ~/.cache/jreid/tokenizers."""
  base = os.environ.get("JREID_DATA_DIR") or os.path.expanduser("~/.cache/jreid")
  return os.path.join(base, "tokenizers")


def training_captions(records: Sequence[Record]) -> list[str]:
  """Every distinct caption of the records, sorted."""
  return sorted({caption for record in records for caption in record.captions})


def method_tokenizer(config: ConfigDict, train_records: Sequence[Record], cache_dir: str,
                     sentences: Sequence[str] = ()) -> Tokenizer:
  """The run's tokenizer: the converted model's (config.model.init), else a BPE of the training captions, or
  of `sentences` (e.g. the fixed instructions) when the records have none.

  The local BPE aims at config.model.text.vocab_size tokens (a small corpus
  may give fewer) and lives in cache_dir/bpe-<size>-<hash of the corpus>.
  """
  if config.model.init:
    return load_tokenizer(os.path.join(config.model.init, TOKENIZER_DIR))
  captions = training_captions(train_records) or sorted(set(sentences))
  if not captions:
    raise ValueError("no training record has a caption: a local tokenizer cannot be trained (give captioned "
                     "data, or config.model.init naming a converted CLIP with its tokenizer)")
  vocab_size = config.model.text.vocab_size
  digest = hashlib.sha256("\n".join(captions).encode()).hexdigest()[:12]
  directory = os.path.join(cache_dir, f"bpe-{vocab_size}-{digest}")
  if os.path.isdir(directory):
    return load_tokenizer(directory)
  os.makedirs(cache_dir, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix=".bpe-", dir=cache_dir)
  try:
    build_local_tokenizer(captions, scratch, vocab_size)
    try:
      os.rename(scratch, directory)
    except OSError:  # Another process cached the same tokenizer first.
      if not os.path.isdir(directory):
        raise
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return load_tokenizer(directory)


class TextTokens:
  """Picklable text -> int32 [context_length] token ids, remembering what it has tokenised."""

  def __init__(self, tokenizer: Tokenizer, context_length: int):
    self.tokenizer, self.context_length = tokenizer, context_length
    self._known: dict[str, np.ndarray] = {}

  def __call__(self, text: str) -> np.ndarray:
    if text not in self._known:
      self._known[text] = self.tokenizer.encode(text, self.context_length)[0]
    return self._known[text]

  def batch(self, texts: Sequence[str]) -> np.ndarray:
    """int32 [len(texts), context_length]."""
    return self.tokenizer.encode(list(texts), self.context_length)
