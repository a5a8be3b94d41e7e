"""Tiny converted weights for the tests, in the directories `jreid.convert` writes: a CLIP and a BERT."""

import jax
import jax.numpy as jnp
import transformers

from jreid.models import CLIPConfig, TextConfig, VisionConfig, bert, build_local_tokenizer, init_params, save_clip


def captions(records) -> list[str]:
  return [c for r in records for c in r.captions]


def tiny_clip(directory, records) -> tuple[str, dict]:
  """(directory/clip, its parameters): 32 x 32 images, patch 16, width 32, and a BPE of the records' captions."""
  tokenizer = build_local_tokenizer(captions(records), str(directory / "bpe"), 600)
  vision = VisionConfig(image_size=(32, 32), patch_size=16, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=16)
  text = TextConfig(vocab_size=tokenizer.vocab_size, context_length=24, width=32, layers=1, heads=2, mlp_dim=64,
                    embed_dim=16, eot_token_id=tokenizer.eot_token_id)
  params = init_params(CLIPConfig(vision, text), jax.random.key(3))
  save_clip(str(directory / "clip"), CLIPConfig(vision, text), params, tokenizer)
  return str(directory / "clip"), params


def tiny_bert(directory, records) -> tuple[str, dict]:
  """(directory/bert, its parameters): width 24, one layer, WordPiece over the records' caption words."""
  words = sorted({w.strip(".,").lower() for c in captions(records) for w in c.split()})
  (directory / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
  wordpiece = bert.WordPieceTokenizer(transformers.BertTokenizerFast(vocab_file=str(directory / "vocab.txt")))
  config = bert.BertConfig(vocab_size=wordpiece.vocab_size, width=24, layers=1, heads=2, mlp_dim=48,
                           max_positions=64)
  params = bert.Bert(config).init(jax.random.key(4), jnp.zeros((1, 4), jnp.int32))["params"]
  bert.save_bert(str(directory / "bert"), config, params, wordpiece)
  return str(directory / "bert"), params
