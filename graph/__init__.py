"""The collaboration graph between organisations and the graph features the ranker reads."""

from graph.collaboration import (
    COLLABORATION_KINDS,
    Collaboration,
    CollaborationGraph,
    CollaborationLink,
    pair_contributions,
    recency,
)
from graph.proximity import UNREACHABLE_HOPS, GraphSnapshot, ProximityFeatures

__all__ = [
    "COLLABORATION_KINDS",
    "UNREACHABLE_HOPS",
    "Collaboration",
    "CollaborationGraph",
    "CollaborationLink",
    "GraphSnapshot",
    "ProximityFeatures",
    "pair_contributions",
    "recency",
]
