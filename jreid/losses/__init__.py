"""Loss functions: pure, jit-friendly, computed over the global batch."""

from jreid.losses.adaptive_triplet import (adaptive_batch_hard_triplet, adaptive_triplet_term,
                                           instruction_relatedness)
from jreid.losses.contrastive import (INIT_LOG_SCALE, distribution_alignment, dynamic_task_loss, hard_negatives,
                                      image_text_contrastive, logit_scale, similarity_logits, symmetric_info_nce,
                                      task_aware_weights)
from jreid.losses.identity import cross_entropy, cross_entropy_per_row
from jreid.losses.self_distillation import (dino_loss, ema_update, teacher_momentum, teacher_temperature,
                                            update_centre)
from jreid.losses.task_weighting import task_weights, update_confidence
from jreid.losses.triplet import batch_hard_triplet

__all__ = ["INIT_LOG_SCALE", "adaptive_batch_hard_triplet", "adaptive_triplet_term", "batch_hard_triplet",
           "cross_entropy", "cross_entropy_per_row", "dino_loss", "distribution_alignment", "dynamic_task_loss",
           "ema_update", "hard_negatives", "image_text_contrastive", "instruction_relatedness", "logit_scale",
           "similarity_logits", "symmetric_info_nce", "task_aware_weights", "task_weights", "teacher_momentum",
           "teacher_temperature", "update_centre", "update_confidence"]
