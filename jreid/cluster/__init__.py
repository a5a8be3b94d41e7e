"""Clustering for unsupervised stages: Jaccard graph (device), DBSCAN (host), memory, matching, quality, groups."""

from jreid.cluster.dbscan import cluster
from jreid.cluster.groups import split_groups
from jreid.cluster.jaccard import NeighbourGraph, k_reciprocal_jaccard
from jreid.cluster.matching import agreeing_pairs, match_clusters
from jreid.cluster.memory import init_memory, momentum_update
from jreid.cluster.quality import pairwise_scores

__all__ = ["NeighbourGraph", "agreeing_pairs", "cluster", "init_memory", "k_reciprocal_jaccard",
           "match_clusters", "momentum_update", "pairwise_scores", "split_groups"]
