"""Decision-flow node implementations, one module per node type."""

from engine.flow.nodes.base import Call, CompileContext, Node
from engine.flow.nodes.compute import ComputeNode
from engine.flow.nodes.contact_policy import ContactPolicyNode
from engine.flow.nodes.filter import FilterNode
from engine.flow.nodes.inventory import InventoryNode
from engine.flow.nodes.match_creatives import MatchCreativesNode
from engine.flow.nodes.passthrough import EnrichNode, ExtensionPointNode, GroupNode
from engine.flow.nodes.qualify import QualifyNode
from engine.flow.nodes.rank import RankNode
from engine.flow.nodes.response import ResponseNode
from engine.flow.nodes.score import ScoreNode

NODE_TYPES: dict[str, type[Node]] = {
    "inventory": InventoryNode,
    "match_creatives": MatchCreativesNode,
    "enrich": EnrichNode,
    "filter": FilterNode,
    "qualify": QualifyNode,
    "contact_policy": ContactPolicyNode,
    "score": ScoreNode,
    "rank": RankNode,
    "group": GroupNode,
    "compute": ComputeNode,
    "response": ResponseNode,
    "extension_point": ExtensionPointNode,
}

__all__ = ["NODE_TYPES", "Call", "CompileContext", "Node"]
