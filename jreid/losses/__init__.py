"""Loss functions: pure, jit-friendly, computed over the global batch."""

from jreid.losses.identity import cross_entropy
from jreid.losses.triplet import batch_hard_triplet, pairwise_distance, pairwise_squared_distance

__all__ = ["cross_entropy", "batch_hard_triplet", "pairwise_distance", "pairwise_squared_distance"]
