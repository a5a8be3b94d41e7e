"""The attention kernels equal a NumPy reference and each other (cuDNN on odd lengths, on a GPU)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreid.models import clip


def _numpy_attention(q, k, v, causal):
  q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
  logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
  if causal:
    logits = np.where(np.tril(np.ones(logits.shape[-2:], bool)), logits, -np.inf)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  return np.einsum("bnts,bsnh->btnh", weights, v)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_numpy(causal):
  q, k, v = jax.random.normal(jax.random.key(2), (3, 2, 13, 4, 8))
  with jax.default_matmul_precision("highest"):  # no TF32 on GPUs
    out = clip.attention(q, k, v, is_causal=causal)
  np.testing.assert_allclose(out, _numpy_attention(q, k, v, causal), atol=1e-5)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs a GPU")
@pytest.mark.parametrize("length,causal", [(129, False), (77, True), (64, False)])
def test_cudnn_attention_on_odd_lengths_equals_xla(length, causal, monkeypatch):
  q, k, v = jax.random.normal(jax.random.key(3), (3, 4, length, 12, 64), jnp.bfloat16)

  def loss(q, k, v):
    return jnp.sum(clip.attention(q, k, v, is_causal=causal).astype(jnp.float32) ** 2)

  results = {}
  for choice in ("xla", "cudnn"):
    monkeypatch.setenv(clip.ATTENTION_ENV, choice)
    results[choice] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(q, k, v)
  for xla, cudnn in zip(jax.tree.leaves(results["xla"]), jax.tree.leaves(results["cudnn"])):
    xla, cudnn = np.asarray(xla, np.float32), np.asarray(cudnn, np.float32)
    assert np.linalg.norm(cudnn - xla) <= 1e-2 * np.linalg.norm(xla)  # bf16 rounding apart

