"""CLIP tokenizer: local training, loading, fixed-length encoding."""

import json
import os

import numpy as np
import pytest

from jreid.models import build_local_tokenizer, load_tokenizer

CAPTIONS = [
    "A man in a red shirt and blue jeans walks past the camera.",
    "The woman wears a black coat and carries a white bag.",
    "A young person with a green backpack, grey trousers and white shoes.",
    "Ignore clothes. Retrieve the same person wearing a yellow jacket!",
] * 5


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("tokenizer"))
  build_local_tokenizer(CAPTIONS, directory, vocab_size=600)
  return directory


def test_build_is_deterministic_and_loads_back(tokenizer_dir):
  built = build_local_tokenizer(CAPTIONS, tokenizer_dir + "_again", vocab_size=600)
  loaded = load_tokenizer(tokenizer_dir)
  assert loaded.vocab_size == built.vocab_size <= 600
  assert loaded.sot_token_id == loaded.vocab_size - 2
  assert loaded.eot_token_id == loaded.pad_token_id == loaded.vocab_size - 1
  ids = loaded.encode(CAPTIONS[:3] + ["unseen wörds ☃"], context_length=32)
  np.testing.assert_array_equal(ids, built.encode(CAPTIONS[:3] + ["unseen wörds ☃"], 32))
  assert ids.dtype == np.int32 and ids.shape == (4, 32)
  assert (ids[:, 0] == loaded.sot_token_id).all() and (ids < loaded.vocab_size).all()


def test_padding_after_eot(tokenizer_dir):
  tokenizer = load_tokenizer(tokenizer_dir)
  row = tokenizer.encode("a man", context_length=10)[0]
  eot = int(np.argmax(row == tokenizer.eot_token_id))
  assert 2 < eot < 10
  assert (row[eot + 1:] == tokenizer.pad_token_id).all()


def test_truncation_keeps_eot(tokenizer_dir):
  tokenizer = load_tokenizer(tokenizer_dir)
  full = tokenizer.encode(CAPTIONS[0], context_length=64)[0]
  short = tokenizer.encode(CAPTIONS[0], context_length=8)[0]
  assert short[0] == tokenizer.sot_token_id and short[-1] == tokenizer.eot_token_id
  np.testing.assert_array_equal(short[:7], full[:7])


def test_vocab_and_merges_files(tokenizer_dir, tmp_path):
  with open(os.path.join(tokenizer_dir, "tokenizer.json")) as f:
    model = json.load(f)["model"]
  with open(tmp_path / "vocab.json", "w") as f:
    json.dump(model["vocab"], f)
  with open(tmp_path / "merges.txt", "w") as f:
    f.write("#version: 0.2\n" + "".join(" ".join(pair) + "\n" for pair in model["merges"]))
  np.testing.assert_array_equal(load_tokenizer(str(tmp_path)).encode(CAPTIONS[:2], 20),
                                load_tokenizer(tokenizer_dir).encode(CAPTIONS[:2], 20))


def test_missing_directory_is_a_clear_error(tmp_path):
  missing = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="tokenizer.json.*vocab.json.*merges.txt") as error:
    load_tokenizer(missing)
  assert missing in str(error.value)
