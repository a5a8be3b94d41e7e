"""Evaluation: jitted ranking and metrics per protocol, re-ranking, pictures."""

from jreid.eval.chance import chance_metrics
from jreid.eval.evaluate import evaluate
from jreid.eval.protocols import PROTOCOLS
from jreid.eval.ranking import similarity
from jreid.eval.rerank import average_query_expansion, k_reciprocal_distances
from jreid.eval.visualize import save_ranked_results

__all__ = ["PROTOCOLS", "average_query_expansion", "chance_metrics",
           "evaluate", "k_reciprocal_distances", "save_ranked_results",
           "similarity"]
