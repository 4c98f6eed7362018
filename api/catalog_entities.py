"""The catalog entities served under ``/api/v1``: paths, names and documented shapes.

Request bodies are the catalog document models (``engine.catalog.documents``), documented
as they are: a create/replace body is the document, a PATCH body the same fields all
optional. Responses are records: the stored document plus ``id``, ``tenantId``,
``version``, ``createdAt``, ``updatedAt``, ``deletedAt`` (decision flows add
``rowVersion``, qualification rules the computed ``decisioningStage``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from api.openapi import ERROR_RESPONSES
from api.schemas import (
    BehavioralMetricList,
    BehavioralMetricOut,
    ErrorEnvelope,
    ExperimentList,
    ExperimentOut,
)
from engine.catalog import documents as d

CATALOG_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {
        "model": ERROR_RESPONSES[400]["model"],
        "description": "Duplicate name/key/id, or a stale rowVersion/If-Match (CONFLICT)",
    },
}


def _fields(
    model: type[BaseModel], *, exclude: tuple[str, ...] = (), optional: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in exclude:
            continue
        if optional:
            info = copy.copy(info)
            info.default, info.default_factory, info.validate_default = None, None, None
        out[name] = (info.annotation, info)
    return out


def body_model(
    model: type[d.Document],
    name: str,
    *,
    exclude: tuple[str, ...] = (),
    optional: bool = False,
    extra: dict[str, Any] | None = None,
) -> type[BaseModel]:
    """A request body documented like ``model`` (fields optional for PATCH)."""
    fields = _fields(model, exclude=exclude, optional=optional) | (extra or {})
    return create_model(
        name, __base__=d.Document, __module__=__name__, __doc__=model.__doc__, **fields
    )


def record_model(model: type[d.Document], extra: dict[str, Any] | None = None) -> type[BaseModel]:
    """The response shape: the document plus the store's bookkeeping fields."""
    fields = (
        _fields(model, exclude=("id",))
        | {
            "id": (str, ...),
            "tenantId": (str, ...),
            "version": (int, Field(description="Incremented by every update.")),
            "createdAt": (str, ...),
            "updatedAt": (str, ...),
            "deletedAt": (str | None, Field(default=None, description="Set by a soft delete.")),
        }
        | (extra or {})
    )

    base = type(
        f"_{model.__name__}Base",
        (BaseModel,),
        {
            "model_config": ConfigDict(
                alias_generator=d.Document.model_config["alias_generator"],
                populate_by_name=True,
                extra="allow",
            ),
            "__module__": __name__,
        },
    )
    return create_model(f"{model.__name__}Record", __base__=base, __module__=__name__, **fields)


class Pagination(BaseModel):
    total: int
    limit: int
    hasMore: bool
    nextCursor: str | None


def page_model(record: type[BaseModel], name: str) -> type[BaseModel]:
    return create_model(
        name,
        __module__=__name__,
        data=(list[record], ...),  # type: ignore[valid-type]
        pagination=(Pagination, ...),
    )


ROW_VERSION = {
    "row_version": (
        int | None,
        Field(
            default=None, ge=1, description="The version you read; a stale one is refused (409)."
        ),
    )
}


@dataclass(frozen=True)
class CatalogEntity:
    table: str  # store table / export key
    path: str  # URL path under /api/v1
    singular: str  # operation ids: createOffer, getOffer, ...
    plural: str  # listOffers
    label: str  # in summaries
    tag: str
    create_body: type[BaseModel]
    replace_body: type[BaseModel]
    patch_body: type[BaseModel]
    record: type[BaseModel]
    page: type[BaseModel]


def _entity(
    table: str,
    path: str,
    singular: str,
    plural: str,
    label: str,
    tag: str,
    model: type[d.Document],
    *,
    record_extra: dict[str, Any] | None = None,
    exclude: tuple[str, ...] = (),
    write_extra: dict[str, Any] | None = None,
) -> CatalogEntity:
    record = record_model(model, record_extra)
    create = model if not exclude else body_model(model, f"{singular}Create", exclude=exclude)
    replace = (
        create
        if not write_extra
        else body_model(model, f"{singular}Replace", exclude=exclude, extra=write_extra)
    )
    patch = body_model(model, f"{singular}Patch", exclude=exclude, optional=True, extra=write_extra)
    return CatalogEntity(
        table,
        path,
        singular,
        plural,
        label,
        tag,
        create,
        replace,
        patch,
        record,
        page_model(record, f"{singular}Page"),
    )


_FLOW_EXTRA = {
    "rowVersion": (int, Field(description="Optimistic-concurrency token (send it back on update)."))
}
_RULE_EXTRA = {
    "decisioningStage": (
        str,
        Field(description="The gate the rule acts as: eligibility, fit, match or ranking."),
    )
}

ENTITIES: tuple[CatalogEntity, ...] = (
    _entity(
        "categories", "/categories", "Category", "Categories", "category", "Categories", d.Category
    ),
    _entity(
        "sub_categories",
        "/sub-categories",
        "SubCategory",
        "SubCategories",
        "sub-category",
        "Categories",
        d.SubCategory,
    ),
    _entity("offers", "/offers", "Offer", "Offers", "offer", "Offers", d.Offer),
    _entity("channels", "/channels", "Channel", "Channels", "channel", "Channels", d.Channel),
    _entity(
        "placements", "/placements", "Placement", "Placements", "placement", "Channels", d.Placement
    ),
    _entity(
        "creatives", "/creatives", "Creative", "Creatives", "creative", "Creatives", d.Creative
    ),
    _entity(
        "outcome_types",
        "/outcome-types",
        "OutcomeType",
        "OutcomeTypes",
        "outcome type",
        "Outcome types",
        d.OutcomeType,
    ),
    _entity(
        "decision_flows",
        "/decision-flows",
        "DecisionFlow",
        "DecisionFlows",
        "decision flow",
        "Decision flows",
        d.DecisionFlow,
        record_extra=_FLOW_EXTRA,
        exclude=("published_versions",),
        write_extra=ROW_VERSION,
    ),
    _entity(
        "flow_routes",
        "/flow-routes",
        "FlowRoute",
        "FlowRoutes",
        "flow route",
        "Decision flows",
        d.FlowRoute,
    ),
    _entity(
        "qualification_rules",
        "/qualification-rules",
        "QualificationRule",
        "QualificationRules",
        "qualification rule",
        "Qualification rules",
        d.QualificationRule,
        record_extra=_RULE_EXTRA,
    ),
    _entity(
        "contact_policies",
        "/contact-policies",
        "ContactPolicy",
        "ContactPolicies",
        "contact policy",
        "Contact policies",
        d.ContactPolicy,
    ),
)
BY_TABLE = {e.table: e for e in ENTITIES}


@dataclass(frozen=True)
class DocumentEntity:
    """A catalog entity whose CRUD goes through its own service (``Services.<service>``:
    ``list``/``get``/``create``/``update``/``delete``), with checks of its own on top of the
    store's: the same routes, documented with the entity's own names and shapes."""

    service: str  # attribute of api.services.Services
    path: str  # URL path under /api/v1
    param: str  # the path parameter of one document: /path/{param}
    param_doc: str
    singular: str  # operation ids: createX, getX, updateX (PUT), patchX, deleteX
    plural: str  # listXs
    label: str  # "an experiment": summaries of get, patch and delete
    list_summary: str
    create_summary: str
    put_summary: str
    record: type[BaseModel]
    page: type[BaseModel]
    create_body: type[BaseModel]
    create_examples: dict[str, Any]
    update_examples: dict[str, Any]
    conflict: str  # what a 409 on create/update means

    @property
    def write_errors(self) -> dict[int | str, dict[str, Any]]:
        return {**ERROR_RESPONSES, 409: {"model": ErrorEnvelope, "description": self.conflict}}


BEHAVIORAL_METRICS = DocumentEntity(
    service="metrics",
    path="/behavioral-metrics",
    param="metric_id",
    param_doc="The metric id (met_…).",
    singular="BehavioralMetric",
    plural="BehavioralMetrics",
    label="a metric definition",
    list_summary="Metric definitions, newest first, each with its stored value count",
    create_summary="Create a metric definition (at most 20 per tenant)",
    put_summary="Update a metric definition (the fields sent replace the stored ones)",
    record=BehavioralMetricOut,
    page=BehavioralMetricList,
    create_body=d.BehavioralMetric,
    create_examples={
        "clicks": {"summary": "A realtime count of clicks over 7 days", "value": {
            "name": "clicks_7d", "description": "Clicks in the last 7 days",
            "aggregateFunction": "count", "sourceField": "click", "windowDays": 7,
            "computeMode": "realtime",
        }},
        "dismissals": {"summary": "Dismissals of one offer in 30 days", "value": {
            "name": "bogo_dismissals_30d", "aggregateFunction": "count",
            "sourceField": "dismiss", "windowDays": 30, "computeMode": "realtime",
            "filterConditions": {"field": "offerId", "operator": "eq",
                                 "value": "off_bogo_5_5d"},
        }},
    },
    update_examples={"pause": {"summary": "Pause a metric", "value": {"status": "paused"}}},
    conflict="A metric of that name exists (CONFLICT)",
)

EXPERIMENTS = DocumentEntity(
    service="experiments",
    path="/experiments",
    param="experiment_id",
    param_doc="The experiment id (exp_…).",
    singular="Experiment",
    plural="Experiments",
    label="an experiment",
    list_summary="Experiments, newest first (cursor pagination)",
    create_summary="Create an experiment (variants split 100 % of the traffic)",
    put_summary="Update an experiment (fields sent replace the stored ones; variants wholesale)",
    record=ExperimentOut,
    page=ExperimentList,
    create_body=d.Experiment,
    create_examples={
        "creatives": {"summary": "Two creative weightings, 50/50, 10 % holdout", "value": {
            "key": "hero-copy-test", "name": "Hero copy test", "status": "active",
            "holdoutPercent": 10, "conversionOutcomes": ["conversion"],
            "variants": [
                {"key": "control", "trafficPercent": 50, "isControl": True},
                {"key": "bold", "trafficPercent": 50,
                 "creativeWeights": {"cr_bogo_5_5d_web": 100, "cr_bogo_5_7d_web": 10}},
            ],
        }},
        "flows": {"summary": "Priority flow vs propensity flow", "value": {
            "key": "propensity-vs-priority", "name": "Propensity scoring", "status": "draft",
            "variants": [
                {"key": "control", "trafficPercent": 50, "isControl": True},
                {"key": "propensity", "trafficPercent": 50,
                 "decisionFlowId": "propensity-flow"},
            ],
        }},
    },
    update_examples={"start": {"summary": "Start the experiment", "value": {"status": "active"}}},
    conflict="Another experiment is active, or the id exists (CONFLICT)",
)
DOCUMENT_ENTITIES = (BEHAVIORAL_METRICS, EXPERIMENTS)


# -- decision-flow lifecycle and import/export bodies ----------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PublishFlow(_Body):
    notes: str = Field(default="", max_length=2000, description="Release notes.")
    rowVersion: int | None = Field(
        default=None, ge=1, description="The flow version you read (else If-Match)."
    )


class PublishFlowById(PublishFlow):
    id: str = Field(min_length=1, max_length=255, description="The flow id.")


class RollbackFlow(_Body):
    version: int = Field(ge=1, description="The published version to restore.")
    notes: str = Field(default="", max_length=2000)
    rowVersion: int | None = Field(default=None, ge=1)


class RollbackFlowById(RollbackFlow):
    id: str = Field(min_length=1, max_length=255, description="The flow id.")


class VersionSummary(BaseModel):
    nodeCount: int
    scoringMethod: str | None


class FlowVersion(BaseModel):
    version: int
    publishedAt: str
    notes: str
    summary: VersionSummary


class FlowVersions(BaseModel):
    flowId: str
    versions: list[FlowVersion]


class FlowVersionDetail(FlowVersion):
    flowId: str
    configSnapshot: dict[str, Any]


class EnsureBaseResult(BaseModel):
    flowId: str
    created: bool


class CatalogBundle(BaseModel):
    """A whole catalog: one list of documents per entity (the sample pack's format)."""

    model_config = ConfigDict(extra="forbid")

    categories: list[d.Category] = Field(default_factory=list)
    sub_categories: list[d.SubCategory] = Field(default_factory=list)
    channels: list[d.Channel] = Field(default_factory=list)
    placements: list[d.Placement] = Field(default_factory=list)
    offers: list[d.Offer] = Field(default_factory=list)
    creatives: list[d.Creative] = Field(default_factory=list)
    outcome_types: list[d.OutcomeType] = Field(default_factory=list)
    behavioral_metrics: list[d.BehavioralMetric] = Field(default_factory=list)
    qualification_rules: list[d.QualificationRule] = Field(default_factory=list)
    contact_policies: list[d.ContactPolicy] = Field(default_factory=list)
    decision_flows: list[d.DecisionFlow] = Field(default_factory=list)
    experiments: list[d.Experiment] = Field(default_factory=list)
    flow_routes: list[d.FlowRoute] = Field(default_factory=list)


class ImportCounts(BaseModel):
    created: int
    updated: int
    unchanged: int


class ImportIds(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class ImportReport(BaseModel):
    dryRun: bool
    applied: bool
    summary: dict[str, ImportCounts]
    changes: dict[str, ImportIds]
