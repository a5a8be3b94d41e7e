"""Loss functions: pure, jit-friendly, computed over the global batch."""

from jreid.losses.adaptive_triplet import (adaptive_batch_hard_triplet, adaptive_triplet_term,
                                           instruction_relatedness)
from jreid.losses.contrastive import (distribution_alignment, dynamic_task_loss, hard_negatives, logit_scale,
                                      similarity_logits, symmetric_info_nce, task_aware_weights)
from jreid.losses.identity import cross_entropy, cross_entropy_per_row
from jreid.losses.task_weighting import task_weights, update_confidence
from jreid.losses.triplet import batch_hard_triplet

__all__ = ["adaptive_batch_hard_triplet", "adaptive_triplet_term", "batch_hard_triplet", "cross_entropy",
           "cross_entropy_per_row", "distribution_alignment", "dynamic_task_loss", "hard_negatives",
           "instruction_relatedness", "logit_scale", "similarity_logits", "symmetric_info_nce", "task_aware_weights",
           "task_weights", "update_confidence"]
