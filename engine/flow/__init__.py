"""Decision flows: V2 config validation, compilation and the node implementations."""

from engine.flow.compiled import CompiledFlow, compile_flow
from engine.flow.request import DecisionRequest, PlacementRequest
from engine.flow.validate import (
    BASE_FLOW_KEY,
    PHASES,
    base_nba_config,
    base_nba_flow,
    runnable_config,
    validate_flow_config,
)

__all__ = [
    "BASE_FLOW_KEY",
    "PHASES",
    "CompiledFlow",
    "DecisionRequest",
    "PlacementRequest",
    "base_nba_config",
    "base_nba_flow",
    "compile_flow",
    "runnable_config",
    "validate_flow_config",
]
