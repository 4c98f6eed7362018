"""The ``config`` of qualification rules (spec §12.3) and contact policies (§13.3), per
``ruleType``: a discriminated union checked when a rule or policy is saved.

Each model lists exactly the keys the engine reads (``engine/flow/nodes/qualify.py`` and
``policies.py``), so a typo is a 400 naming ``config.<field>`` instead of a silently
ignored option; cross-field checks (``value`` required unless ``exists``, at least one cap,
...) live in ``problems()``. ``validate_rule_config`` raises ``ValidationError`` with one
detail per problem; ``config_references`` lists the catalog ids a config names so the
store can check they exist in the tenant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from engine.errors import ValidationError

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Names = Annotated[list[Name], Field(min_length=1, max_length=100)]
Hours = Annotated[float, Field(gt=0, le=24 * 3650)]
Days = Annotated[float, Field(gt=0, le=3650)]
Since = Annotated[float, Field(ge=0, le=24 * 3650)]
Cap = Annotated[int, Field(ge=1, le=1_000_000)]
HourOfDay = Annotated[float, Field(ge=0, le=24)]

# The operator spellings the engine accepts (``normalize_operator`` in qualify.py).
OPERATOR_ALIASES = {
    "==": "eq",
    "=": "eq",
    "equals": "eq",
    "!=": "neq",
    "not_equals": "neq",
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
    "greater_than": "gt",
    "less_than": "lt",
}
COMPARISONS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "not_exists")
Problem = tuple[str, str]  # (field inside config, message)


def normalize_operator(op: str) -> str:
    op = op.strip().lower()
    return OPERATOR_ALIASES.get(op, op)


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def problems(self) -> Iterator[Problem]:
        """Cross-field checks; each yields ``(field, message)``."""
        return iter(())

    def _given(self, *names: str) -> list[str]:
        return [n for n in names if getattr(self, n) is not None]

    def _exactly_one(self, *names: str) -> Iterator[Problem]:
        given = self._given(*names)
        if not given:
            yield (
                names[0],
                f"{names[0]} is required"
                + (f" (or one of {', '.join(names[1:])})" if len(names) > 1 else ""),
            )
        elif len(given) > 1:
            yield given[1], f"set only one of {', '.join(given)}"


def _operator_problems(operator: str, value: Any) -> Iterator[Problem]:
    op = normalize_operator(operator)
    if op not in COMPARISONS:
        yield "operator", f"unknown operator {operator!r}; use one of {', '.join(COMPARISONS)}"
    elif op in ("exists", "not_exists"):
        return
    elif value is None:
        yield "value", f"a value is required for operator {op!r}"
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            yield "value", f"operator {op!r} needs a non-empty list of values"
        elif any(isinstance(v, dict | list) for v in value):
            yield "value", f"operator {op!r} needs a list of plain values (strings or numbers)"
    elif isinstance(value, dict | list):
        yield "value", f"operator {op!r} compares with one plain value, not a list or object"
    elif op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
        yield "value", f"operator {op!r} needs a number, date or string, not a boolean"


# -- qualification rules (§12.3) ----------------------------------------------------------
class _Gate(RuleConfig):
    # soft (match-stage) rules multiply the score by decay when they fail
    decay: float | None = Field(default=None, ge=0.1, le=1.0)


class SegmentRequired(_Gate):
    requiredSegments: list[Name] = Field(max_length=100)


class AttributeCondition(_Gate):
    attribute: Name | None = None
    field: Name | None = None  # legacy spelling of attribute
    operator: str = Field(min_length=1, max_length=32)
    value: Any = None

    def problems(self) -> Iterator[Problem]:
        yield from self._exactly_one("attribute", "field")
        yield from _operator_problems(self.operator, self.value)


class PropensityThreshold(_Gate):
    minPropensity: float | None = Field(default=None, ge=0, le=1)
    threshold: float | None = Field(default=None, ge=0, le=1)
    minScore: float | None = Field(default=None, ge=0, le=1)

    def problems(self) -> Iterator[Problem]:
        yield from self._exactly_one("minPropensity", "threshold", "minScore")


class RecencyCheck(_Gate):
    minDaysSinceLastContact: Since | None = None
    minHoursSinceLastContact: Since | None = None
    maxDaysSinceLastContact: Since | None = None
    maxHoursSinceLastContact: Since | None = None
    outcomeTypes: Names | None = None
    outcomeType: Name | None = None
    level: Literal["offer", "customer"] | None = None

    def problems(self) -> Iterator[Problem]:
        bounds = {}
        for side in ("min", "max"):
            days, hours = f"{side}DaysSinceLastContact", f"{side}HoursSinceLastContact"
            if getattr(self, days) is not None and getattr(self, hours) is not None:
                yield hours, f"set only one of {days} and {hours}"
            if getattr(self, days) is not None:
                bounds[side] = getattr(self, days) * 24
            elif getattr(self, hours) is not None:
                bounds[side] = getattr(self, hours)
        if not bounds:
            yield ("minDaysSinceLastContact", "set a bound: min/max Days/Hours SinceLastContact")
        elif "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            yield "maxDaysSinceLastContact", "the maximum time since contact is below the minimum"
        if self.outcomeTypes is not None and self.outcomeType is not None:
            yield "outcomeType", "set only one of outcomeTypes and outcomeType"


class _Metric(RuleConfig):
    metric: Name | None = None
    metricKey: Name | None = None
    metricName: Name | None = None
    operator: str = Field(min_length=1, max_length=32)
    value: Any = None

    def problems(self) -> Iterator[Problem]:
        yield from self._exactly_one("metric", "metricKey", "metricName")
        yield from _operator_problems(self.operator, self.value)


class MetricCondition(_Metric, _Gate):
    pass


QUALIFICATION_CONFIGS: dict[str, type[RuleConfig]] = {
    "segment_required": SegmentRequired,
    "attribute_condition": AttributeCondition,
    "propensity_threshold": PropensityThreshold,
    "recency_check": RecencyCheck,
    "metric_condition": MetricCondition,
}


# -- contact policies (§13.3) -------------------------------------------------------------
class _Policy(RuleConfig):
    bypassable: bool | None = None  # false: mandatory offers must respect it too


class _Caps(_Policy):
    maxPerDay: Cap | None = None
    maxPerWeek: Cap | None = None
    maxPerMonth: Cap | None = None
    lookbackHours: Hours | None = None  # the maxPerDay window (default 24 h)
    maxContacts: Cap | None = None  # Gen-1: maxContacts per rolling windowDays
    windowDays: Days | None = None

    def problems(self) -> Iterator[Problem]:
        if not self._given("maxPerDay", "maxPerWeek", "maxPerMonth", "maxContacts"):
            yield (
                "maxPerDay",
                (
                    "set at least one cap: maxPerDay, maxPerWeek, maxPerMonth, or maxContacts "
                    "with windowDays"
                ),
            )
        yield from self._gen1(require_window=True)
        if self.lookbackHours is not None and self.maxPerDay is None:
            yield "lookbackHours", "lookbackHours is the maxPerDay window; set maxPerDay too"

    def _gen1(self, *, require_window: bool) -> Iterator[Problem]:
        if self.maxContacts is not None and self.windowDays is None and require_window:
            yield "windowDays", "windowDays is required with maxContacts"
        if self.windowDays is not None and self.maxContacts is None:
            yield "maxContacts", "maxContacts is required with windowDays"


class FrequencyCap(_Caps):
    perOffer: bool | None = None


class CrossChannelCap(_Caps):
    pass


class CustomerTotalCap(_Caps):
    maxTotal: Cap | None = None

    def problems(self) -> Iterator[Problem]:
        if not self._given("maxTotal", "maxContacts", "maxPerDay", "maxPerWeek", "maxPerMonth"):
            yield (
                "maxTotal",
                (
                    "set at least one cap: maxTotal, maxContacts (+ windowDays), maxPerDay, "
                    "maxPerWeek or maxPerMonth"
                ),
            )
        yield from self._gen1(require_window=False)


class Cooldown(_Policy):
    cooldownHours: Hours | None = None
    cooldownDays: Days | None = None
    perOffer: bool | None = None

    def problems(self) -> Iterator[Problem]:
        if not self._given("cooldownHours", "cooldownDays"):
            yield "cooldownHours", "cooldownHours is required and must be greater than 0"
        else:
            yield from self._exactly_one("cooldownHours", "cooldownDays")


class BudgetExhausted(_Policy):
    checkImpressions: bool | None = None
    checkDailyBudget: bool | None = None
    budgetField: Name | None = None


class OutcomeBased(_Policy):
    outcomeType: Name | None = None
    outcomeTypes: Names | None = None
    outcomes: Names | None = None
    lookbackDays: Days | None = None
    action: Literal["suppress"] | None = None
    perOffer: bool | None = None

    def problems(self) -> Iterator[Problem]:
        yield from self._exactly_one("outcomeType", "outcomeTypes", "outcomes")


class SegmentExclusion(_Policy):
    excludeSegments: Names | None = None
    segments: Names | None = None

    def problems(self) -> Iterator[Problem]:
        yield from self._exactly_one("excludeSegments", "segments")


class HourRange(RuleConfig):
    start: HourOfDay
    end: HourOfDay


class TimeWindow(_Policy):
    allowedDays: list[Annotated[int, Field(ge=0, le=7)]] | None = Field(
        default=None, min_length=1, max_length=7
    )
    allowedHours: HourRange | None = None
    startHour: HourOfDay | None = None
    endHour: HourOfDay | None = None
    timezone: str | None = Field(default=None, min_length=1, max_length=64)

    def problems(self) -> Iterator[Problem]:
        if not self._given("allowedDays", "allowedHours", "startHour", "endHour"):
            yield "allowedDays", "set allowedDays and/or allowedHours {start, end}"
        if (self.startHour is None) != (self.endHour is None):
            yield (
                "endHour" if self.endHour is None else "startHour",
                ("startHour and endHour go together"),
            )
        if self.allowedHours is not None and self._given("startHour", "endHour"):
            yield "startHour", "set only one of allowedHours and startHour/endHour"
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except Exception:  # ZoneInfoNotFoundError, ValueError on odd keys, ...
                yield "timezone", f"unknown time zone {self.timezone!r} (use an IANA name)"


class MutualExclusion(_Policy):
    offerIds: list[Name] = Field(min_length=2, max_length=100)
    lookbackDays: Days | None = None

    def problems(self) -> Iterator[Problem]:
        if len(set(self.offerIds)) != len(self.offerIds):
            yield "offerIds", "offer ids must be unique"


class AllowOverride(_Policy):
    offerIds: Names | None = None


class CategorySuppression(_Policy):
    lookbackHours: Hours | None = None
    lookbackDays: Days | None = None
    categoryIds: Names | None = None

    def problems(self) -> Iterator[Problem]:
        if self.lookbackHours is not None and self.lookbackDays is not None:
            yield "lookbackDays", "set only one of lookbackHours and lookbackDays"


class PolicyMetricCondition(_Metric, _Policy):
    pass


POLICY_CONFIGS: dict[str, type[RuleConfig]] = {
    "frequency_cap": FrequencyCap,
    "cooldown": Cooldown,
    "budget_exhausted": BudgetExhausted,
    "outcome_based": OutcomeBased,
    "segment_exclusion": SegmentExclusion,
    "time_window": TimeWindow,
    "mutual_exclusion": MutualExclusion,
    "cross_channel_cap": CrossChannelCap,
    "customer_total_cap": CustomerTotalCap,
    "allow_override": AllowOverride,
    "category_suppression": CategorySuppression,
    "metric_condition": PolicyMetricCondition,
}

CONFIGS: dict[str, dict[str, type[RuleConfig]]] = {
    "qualification_rules": QUALIFICATION_CONFIGS,
    "contact_policies": POLICY_CONFIGS,
}
_LABELS = {"qualification_rules": "qualification rule", "contact_policies": "contact policy"}


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(["config", *(str(p) for p in loc)])


def validate_rule_config(entity: str, rule_type: str, config: Any) -> None:
    """Check ``config`` against its ``ruleType`` model; raise ``ValidationError`` naming
    ``config.<field>``. Unknown entities and rule types are left to the document model."""
    model = CONFIGS.get(entity, {}).get(rule_type)
    if model is None:
        return
    label = _LABELS[entity]
    try:
        parsed = model.model_validate(config)
    except pydantic.ValidationError as exc:
        known = ", ".join(model.model_fields)
        details = []
        for err in exc.errors():
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"unknown field for ruleType {rule_type!r}; known fields: {known}"
            elif err["type"] == "missing":
                message = "field required"
            details.append({"field": _loc(tuple(err["loc"])), "message": message})
        first = details[0]
        raise ValidationError(
            f"invalid {label}: {first['field']}: {first['message']}", details=details
        ) from None
    problems = [{"field": _loc((f,)), "message": m} for f, m in parsed.problems()]
    if problems:
        first = problems[0]
        raise ValidationError(
            f"invalid {label}: {first['field']}: {first['message']}", details=problems
        )


# config key -> catalog table whose ids it lists, per (entity, ruleType)
_REFERENCES: dict[tuple[str, str], dict[str, str]] = {
    ("contact_policies", "mutual_exclusion"): {"offerIds": "offers"},
    ("contact_policies", "allow_override"): {"offerIds": "offers"},
    ("contact_policies", "category_suppression"): {"categoryIds": "categories"},
}


def config_references(
    entity: str, rule_type: str, config: Mapping[str, Any]
) -> list[tuple[str, str, str]]:
    """``(field, table, id)`` for every catalog id the (valid) config names."""
    out = []
    for key, table in _REFERENCES.get((entity, rule_type), {}).items():
        for i, ref in enumerate(config.get(key) or ()):
            out.append((f"config.{key}.{i}", table, str(ref)))
    return out


__all__ = [
    "COMPARISONS",
    "CONFIGS",
    "POLICY_CONFIGS",
    "QUALIFICATION_CONFIGS",
    "RuleConfig",
    "config_references",
    "normalize_operator",
    "validate_rule_config",
]
