"""Evaluation: jitted ranking and metrics per protocol, re-ranking, pictures."""

from jreid.eval.chance import chance_metrics
from jreid.eval.evaluate import evaluate
from jreid.eval.rerank import average_query_expansion, k_reciprocal_distances

__all__ = ["average_query_expansion", "chance_metrics", "evaluate", "k_reciprocal_distances"]
