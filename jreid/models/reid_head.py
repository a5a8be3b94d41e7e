"""The ReID head: BNNeck and a bias-free identity classifier (Luo et al. 2019)."""

import flax.linen as nn
import jax
import jax.numpy as jnp


class BNNeckHead(nn.Module):
  """BatchNorm with a frozen (absent) bias on the feature, then a bias-free classifier.

  Returns (bn_feature, logits); the classifier runs in fp32 with init std 0.001.
  """

  num_classes: int

  @nn.compact
  def __call__(self, feature: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
    feature = feature.astype(jnp.float32)
    bn = nn.BatchNorm(use_running_average=not train, use_bias=False, momentum=0.9, epsilon=1e-5,
                      name="bnneck")(feature)
    logits = nn.Dense(self.num_classes, use_bias=False, kernel_init=nn.initializers.normal(0.001),
                      name="classifier")(bn)
    return bn, logits
