"""Pydantic models of each node type's ``config`` (the V2 flow JSON, camelCase).

Defaults follow spec §9.3; where the docs disagree (``match_creatives``) the composable-page
defaults are used and the Base NBA flow sets its own values explicitly.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FilterOperator = Literal[
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "regex",
    "is_null",
    "is_not_null",
]
FILTER_OPERATORS: tuple[str, ...] = get_args(FilterOperator)
Status = Literal["draft", "active", "paused", "archived"]


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class InventoryConfig(NodeConfig):
    scope: Literal["all", "category", "subcategory", "explicit"] = "all"
    categoryIds: list[str] = Field(default_factory=list)
    subCategoryIds: list[str] = Field(default_factory=list)
    offerIds: list[str] = Field(default_factory=list)
    includeStatuses: list[Status] = Field(default_factory=lambda: ["active"], min_length=1)

    @model_validator(mode="after")
    def _scope_ids(self) -> InventoryConfig:
        need = {"category": "categoryIds", "subcategory": "subCategoryIds", "explicit": "offerIds"}
        name = need.get(self.scope)
        if name and not getattr(self, name) and not self.offerIds:
            raise ValueError(f"scope {self.scope!r} needs a non-empty {name}")
        return self


class MatchCreativesConfig(NodeConfig):
    requireCreative: bool = True
    placementMatchMode: Literal["exact", "any", "none"] = "any"


class EnrichSource(NodeConfig):
    schemaId: str | None = None
    fields: list[str] = Field(default_factory=list)
    cacheTtlSeconds: int = Field(default=60, ge=0)
    prefix: str = "customer"


class EnrichConfig(NodeConfig):
    lookupKey: str = "customer_id"
    schemaId: str | None = None
    excludeJoinIds: list[str] = Field(default_factory=list)
    sources: list[EnrichSource] = Field(default_factory=list)
    optional: bool = True


class QualifyConfig(NodeConfig):
    mode: Literal["all"] = "all"
    ruleIds: list[str] | None = None


class ContactPolicyConfig(NodeConfig):
    mode: Literal["all"] = "all"
    policyIds: list[str] | None = None


class FilterCondition(NodeConfig):
    field: str = Field(pattern=r"^(offer|customer|request|channel|creative|attributes)\.[^.].*$")
    operator: FilterOperator
    value: Any = None

    @model_validator(mode="after")
    def _value_shape(self) -> FilterCondition:
        if self.operator in ("is_null", "is_not_null"):
            return self
        if self.value is None:
            raise ValueError(f"operator {self.operator!r} needs a value")
        if self.operator in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"operator {self.operator!r} needs a list value")
        if self.operator == "regex":
            try:
                re.compile(str(self.value))
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return self


class FilterConfig(NodeConfig):
    conditions: list[FilterCondition] = Field(min_length=1)
    combinator: Literal["AND", "OR"] = "AND"

    @field_validator("combinator", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class PrieWeights(NodeConfig):
    propensityWeight: float = Field(default=0.4, ge=0, le=1)
    relevanceWeight: float = Field(default=0.2, ge=0, le=1)
    impactWeight: float = Field(default=0.3, ge=0, le=1)
    emphasisWeight: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> PrieWeights:
        total = (
            self.propensityWeight + self.relevanceWeight + self.impactWeight + self.emphasisWeight
        )
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"PRIE weights must sum to 1 (got {total:g})")
        return self


class ScoreConfig(NodeConfig):
    method: Literal["priority_weighted", "propensity", "formula"] = "priority_weighted"
    modelKey: str | None = None
    formula: PrieWeights = Field(default_factory=PrieWeights)
    smoothingWeight: float = Field(default=10.0, gt=0)
    # Documented but not applied by this engine (accepted so saved flows stay valid).
    strategyProfileId: str | None = None
    strategyOverrides: list[dict[str, Any]] = Field(default_factory=list)
    championChallenger: dict[str, Any] | None = None
    shadowModelKeys: list[str] = Field(default_factory=list)
    overrides: list[dict[str, Any]] = Field(default_factory=list)


class RankConfig(NodeConfig):
    method: Literal["score", "diversity"] = "score"
    maxCandidates: int | None = Field(default=None, ge=1, le=50)
    maxPerCategory: int = Field(default=2, ge=1, le=50)


class GroupConfig(NodeConfig):
    deduplicate: bool | None = None  # None: the request decides
    allowPartial: bool | None = None  # deprecated, accepted and ignored


class ComputeConfig(NodeConfig):
    fields: list[str] | None = None  # None: every computed field of the offer's category


class ResponseConfig(NodeConfig):
    responseFormat: Literal["standard"] = "standard"


class ExtensionPointConfig(NodeConfig):
    hook: Literal["pre_score", "score_override", "post_rank"] | None = None


class OpaqueConfig(BaseModel):
    """Node types whose config is not published (conditional, call_flow, …)."""

    model_config = ConfigDict(extra="allow", frozen=True)


NODE_CONFIGS: dict[str, type[BaseModel]] = {
    "inventory": InventoryConfig,
    "filter": FilterConfig,
    "match_creatives": MatchCreativesConfig,
    "enrich": EnrichConfig,
    "qualify": QualifyConfig,
    "contact_policy": ContactPolicyConfig,
    "conditional": OpaqueConfig,
    "call_flow": OpaqueConfig,
    "score": ScoreConfig,
    "optimize": OpaqueConfig,
    "rank": RankConfig,
    "group": GroupConfig,
    "compute": ComputeConfig,
    "set_properties": OpaqueConfig,
    "response": ResponseConfig,
    "extension_point": ExtensionPointConfig,
}
