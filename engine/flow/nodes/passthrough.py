"""Nodes whose work happens elsewhere or nowhere.

- ``enrich``: customer attributes are joined once per request, before the candidate cross
  join (hoisted by the plan); the node only switches that join on.
- ``group``: placements are request slots ranked by ``rank``; the node's ``deduplicate``
  overrides the request's flag.
- ``extension_point``: named hooks with nothing registered run as no-ops.
"""

from __future__ import annotations

from engine.flow.configs import EnrichConfig, ExtensionPointConfig, GroupConfig
from engine.flow.nodes.base import Node


class EnrichNode(Node):
    config: EnrichConfig


class GroupNode(Node):
    config: GroupConfig


class ExtensionPointNode(Node):
    config: ExtensionPointConfig
