"""Catalog documents: the validated, human-readable shape of every catalog entity.

The same documents are the sample pack's YAML files, the store's rows and (later) the API's
request and response bodies. Field names are camelCase, as the API speaks them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

Status = Literal["draft", "active", "paused", "archived"]
ChannelType = Literal[
    "email", "push", "sms", "in_app", "web", "webhook", "whatsapp", "direct_mail", "social"
]
Scope = Literal[
    "global", "category", "subcategory", "offer", "creative", "channel", "placement", "segment"
]


class Document(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
    )

    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CustomField(Document):
    id: None = None
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str | None = None
    type: Literal["text", "number", "select", "boolean", "date", "computed"] = "text"
    required: bool = False
    options: list[str] | None = None
    formula: str | None = Field(default=None, max_length=8192, validate_default=True)
    output_type: Literal["number", "text", "decimal"] | None = None

    @field_validator("formula")
    @classmethod
    def _computed_needs_formula(cls, formula: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") == "computed" and not formula:
            raise ValueError("a computed field needs a formula")
        return formula


class Category(Document):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    icon: str = ""
    color: str = "blue"
    status: Status = "active"
    ordinal: int = Field(default=0, ge=0)
    custom_fields: list[CustomField] = Field(default_factory=list, max_length=500)

    @field_validator("custom_fields")
    @classmethod
    def _unique_field_names(cls, fields: list[CustomField]) -> list[CustomField]:
        names = [f.name for f in fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"custom field names must be unique: {', '.join(dupes)}")
        return fields


class SubCategory(Document):
    name: str = Field(min_length=1, max_length=255)
    category_id: str
    description: str = ""
    status: Status = "active"
    custom_fields: list[CustomField] = Field(default_factory=list, max_length=500)


class Schedule(Document):
    id: None = None
    start_date: datetime | None = None
    end_date: datetime | None = None

    @field_validator("end_date")
    @classmethod
    def _ordered(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start_date")
        if start and end and end <= start:
            raise ValueError("endDate must be after startDate")
        return end


class Budget(Document):
    id: None = None
    daily_cap_cents: int | None = Field(default=None, ge=0)
    lifetime_cap_cents: int | None = Field(default=None, ge=0)


class Inventory(Document):
    id: None = None
    total_stock: int | None = Field(default=None, ge=0)
    remaining_stock: int | None = Field(default=None, ge=0)


class PerCustomerCaps(Document):
    id: None = None
    daily: int | None = Field(default=None, ge=1)
    weekly: int | None = Field(default=None, ge=1)
    monthly: int | None = Field(default=None, ge=1)


class FrequencyCaps(Document):
    id: None = None
    per_customer: PerCustomerCaps | None = None


class Offer(Document):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    short_desc: str = ""
    status: Status = "draft"
    category_id: str | None = None
    sub_category_id: str | None = None
    priority: int = Field(default=50, ge=0, le=100)
    business_value: float | None = None
    margin: float | None = None
    revenue_value: float | None = None
    product_type: str | None = None
    tags: list[str] = Field(default_factory=list)
    mandatory: bool = False
    mandatory_reason: str | None = None
    mandatory_expires_at: datetime | None = None
    schedule: Schedule | None = None
    budget: Budget | None = None
    inventory: Inventory | None = None
    frequency_caps: FrequencyCaps | None = None
    propensity_threshold: float | None = Field(default=None, ge=0, le=1)
    custom_fields: dict[str, str | float | int | bool | None] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Placement(Document):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    channel_id: str
    slot_type: str = "default"
    max_slots: int = Field(default=1, ge=1, le=50)


class Channel(Document):
    name: str = Field(min_length=1, max_length=255)
    channel_type: ChannelType = "email"
    status: Status = "draft"
    description: str = ""
    delivery_mode: Literal["api", "file", "integration", "manual"] = "api"
    impression_mode: Literal["explicit", "implicit"] = "explicit"
    coupling_mode: Literal["partial", "atomic"] = "partial"


class PersonalizationMapping(Document):
    id: None = None
    variable: str = Field(min_length=1, max_length=100)
    source: str = Field(min_length=1, max_length=255)
    fallback: str | float | int | bool | None = None


class Creative(Document):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    offer_id: str
    channel_id: str
    placement_id: str | None = None
    status: Status = "draft"
    template_type: Literal[
        "email_html",
        "email_text",
        "push_notification",
        "sms_text",
        "in_app_banner",
        "in_app_modal",
        "in_app_card",
        "web_banner",
        "web_overlay",
        "webhook_payload",
        "whatsapp_template",
        "social_post",
    ] = "email_html"
    content: dict[str, str] = Field(default_factory=dict)
    personalization: list[PersonalizationMapping] = Field(default_factory=list, max_length=500)
    weight: int = Field(default=100, ge=0, le=100)
    ab_test_variant: str | None = None


class OutcomeType(Document):
    id: None = None
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    classification: Literal["positive", "negative", "neutral"]
    category: Literal["impression", "response"] = "response"
    is_system: bool = False


SYSTEM_OUTCOME_TYPES: tuple[tuple[str, str, str], ...] = (
    ("impression", "neutral", "impression"),
    ("click", "positive", "response"),
    ("conversion", "positive", "response"),
    ("not_interested", "negative", "response"),
    ("opt_out", "negative", "response"),
    ("defer", "neutral", "response"),
    ("dismiss", "negative", "response"),
    ("share", "positive", "response"),
    ("save", "positive", "response"),
    ("complaint", "negative", "response"),
)


class ScopeAssignment(Document):
    id: None = None
    scope: Scope
    scope_id: str | None = None


class QualificationRule(Document):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    status: Status = "active"
    scope: Scope = "global"
    scope_id: str | None = Field(default=None, validate_default=True)
    scopes: list[ScopeAssignment] = Field(default_factory=list)
    rule_type: Literal[
        "segment_required",
        "attribute_condition",
        "propensity_threshold",
        "recency_check",
        "metric_condition",
    ]
    config: dict[str, Any]
    priority: int = Field(default=50, ge=0, le=100)
    stage: Literal["eligibility", "fit", "match", "ranking"] | None = None

    _scope_id = field_validator("scope_id")(
        classmethod(lambda cls, v, info: _check_scope_id(v, info))
    )


class ContactPolicy(Document):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    status: Status = "active"
    scope: Literal["global", "offer", "creative", "channel", "category", "subcategory"] = "offer"
    scope_id: str | None = Field(default=None, validate_default=True)
    scopes: list[ScopeAssignment] = Field(default_factory=list)
    rule_type: Literal[
        "frequency_cap",
        "cooldown",
        "budget_exhausted",
        "outcome_based",
        "segment_exclusion",
        "time_window",
        "mutual_exclusion",
        "cross_channel_cap",
        "customer_total_cap",
        "allow_override",
        "category_suppression",
        "metric_condition",
    ]
    config: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=50, ge=0, le=100)

    _scope_id = field_validator("scope_id")(
        classmethod(lambda cls, v, info: _check_scope_id(v, info))
    )


def _check_scope_id(scope_id: str | None, info: ValidationInfo) -> str | None:
    scope = info.data.get("scope")
    if scope is not None and scope != "global" and not scope_id:
        raise ValueError(f"scopeId is required when scope is {scope!r}")
    return scope_id


class PublishedVersion(Document):
    id: None = None
    version: int = Field(ge=1)
    config: dict[str, Any]
    published_at: datetime
    notes: str = ""


class DecisionFlow(Document):
    key: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    status: Status = "draft"
    auto_assembly: bool = True
    is_default: bool = False
    draft_config: dict[str, Any] = Field(
        default_factory=lambda: {"version": 2, "nodes": [], "flowConfig": {}}
    )
    published_versions: list[PublishedVersion] = Field(default_factory=list)


class FlowRoute(Document):
    description: str = ""
    channel_id: str | None = None
    placement_id: str | None = None
    decision_flow_id: str
    priority: int = Field(default=0, ge=0)


class FilterCondition(Document):
    """A leaf ``{field, operator, value}`` or a group ``{and: [...]}`` / ``{or: [...]}``."""

    id: None = None
    field: str | None = Field(default=None, min_length=1, max_length=100)
    operator: Literal["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains"] | None = (
        None
    )
    value: Any = None
    and_: list[FilterCondition] | None = Field(default=None, alias="and", max_length=50)
    or_: list[FilterCondition] | None = Field(default=None, alias="or", max_length=50)

    @field_validator("or_")
    @classmethod
    def _one_shape(cls, or_: list | None, info: ValidationInfo) -> list | None:
        leaf = info.data.get("field") is not None or info.data.get("operator") is not None
        groups = (info.data.get("and_") is not None) + (or_ is not None)
        if leaf and groups or groups > 1 or not leaf and not groups:
            raise ValueError("a condition is either {field, operator, value} or {and|or: [...]}")
        if leaf and (info.data.get("field") is None or info.data.get("operator") is None):
            raise ValueError("a condition needs both field and operator")
        return or_


class BehavioralMetric(Document):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: str = Field(default="", max_length=500)
    aggregate_function: Literal["count", "sum", "avg", "min", "max", "ratio"]
    # an outcome key (click, impression, ...) or a summary counter (impressions, positive,
    # negative, neutral, converts, totalValue)
    source_field: str = Field(min_length=1, max_length=64)
    denominator_field: str | None = Field(default=None, min_length=1, max_length=64)
    window_days: int | None = Field(default=None, ge=1, le=365)
    group_by_dimensions: list[Literal["offerId", "channelId", "creativeId", "outcomeType"]] = Field(
        default_factory=list, max_length=2
    )
    filter_conditions: FilterCondition | None = None
    compute_mode: Literal["realtime", "batch"] = "batch"
    batch_interval_min: int = Field(default=60, ge=5, le=1440)
    status: Literal["active", "paused", "archived"] = Field(default="active", validate_default=True)

    @field_validator("status")
    @classmethod
    def _realtime_aggregates(cls, status: str, info: ValidationInfo) -> str:
        agg, mode = info.data.get("aggregate_function"), info.data.get("compute_mode")
        if mode == "realtime" and agg not in (None, "count", "sum"):
            raise ValueError("realtime metrics support only count and sum")
        if agg == "ratio" and not info.data.get("denominator_field"):
            raise ValueError("a ratio metric needs denominatorField")
        return status


class ExperimentVariant(Document):
    id: None = None
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    traffic_percent: float = Field(ge=0, le=100)
    is_control: bool = False
    decision_flow_id: str | None = None
    creative_weights: dict[str, int] = Field(default_factory=dict)


class Experiment(Document):
    key: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    status: Literal["draft", "active", "paused", "completed"] = "draft"
    variants: list[ExperimentVariant] = Field(min_length=2, max_length=20)
    holdout_percent: float = Field(default=0, ge=0, lt=100)
    conversion_outcomes: list[str] = Field(default_factory=lambda: ["conversion"], min_length=1)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)

    @field_validator("variants")
    @classmethod
    def _split(cls, variants: list[ExperimentVariant]) -> list[ExperimentVariant]:
        total = sum(v.traffic_percent for v in variants)
        if abs(total - 100) > 1e-9:
            raise ValueError(f"variant traffic percentages must sum to 100 (got {total:g})")
        keys = [v.key for v in variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be unique")
        if sum(v.is_control for v in variants) > 1:
            raise ValueError("at most one variant can be the control")
        return variants


ENTITY_MODELS: dict[str, type[Document]] = {
    "behavioral_metrics": BehavioralMetric,
    "experiments": Experiment,
    "categories": Category,
    "sub_categories": SubCategory,
    "offers": Offer,
    "channels": Channel,
    "placements": Placement,
    "creatives": Creative,
    "outcome_types": OutcomeType,
    "qualification_rules": QualificationRule,
    "contact_policies": ContactPolicy,
    "decision_flows": DecisionFlow,
    "flow_routes": FlowRoute,
}
