"""The shared array operations: L2 normalisation (JAX and NumPy) and the masked mean."""

import jax
import jax.numpy as jnp
import numpy as np

from jreid.ops import l2_normalize, masked_mean


def test_l2_normalize_keeps_the_array_kind_and_zero_rows():
  x = np.array([[3.0, 4.0], [0.0, 0.0]])
  got = l2_normalize(x)
  assert isinstance(got, np.ndarray) and got.dtype == np.float64
  np.testing.assert_array_equal(got, [[0.6, 0.8], [0.0, 0.0]])
  half = l2_normalize(jnp.asarray(x, jnp.bfloat16))
  assert isinstance(half, jax.Array) and half.dtype == jnp.float32
  np.testing.assert_allclose(half, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
  np.testing.assert_allclose(l2_normalize(jnp.asarray(x.T), axis=0), [[0.6, 0.0], [0.8, 0.0]], rtol=1e-6)


def test_masked_mean_over_all_and_along_an_axis():
  values = jnp.array([[1.0, 2.0, jnp.inf], [4.0, 5.0, 6.0]])
  mask = jnp.array([[True, True, False], [False, False, False]])
  assert float(masked_mean(values, mask)) == 1.5  # the masked-out inf does not leak in
  np.testing.assert_array_equal(masked_mean(values, mask, axis=1), [1.5, 0.0])
  grad = jax.grad(lambda v: masked_mean(v, mask))(values)
  np.testing.assert_array_equal(grad, [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
