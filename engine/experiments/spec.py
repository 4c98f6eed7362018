"""An experiment document as the frozen, validated shape the assignment and statistics use.

Accepts what the store returns (camelCase, with ``id``/``version``/timestamps), a plain
snake_case or camelCase dict, or an ``Experiment`` model. Validation is the catalog model's,
so an experiment that the store accepted always parses.

Bucket mapping (normative, spec §15.2): ``bucket = fnv1a32(f"{key}:{customerId}") % 10_000``.
With ``H = round_half_up(holdoutPercent * 100)`` buckets ``[0, H)`` are the holdout. The other
``R = 10_000 - H`` buckets are split across the variants in declared order by cumulative
``trafficPercent``: with ``C_i`` the sum of the first ``i`` percentages, variant ``i`` owns
``[H + round_half_up(R * C_(i-1) / 100), H + round_half_up(R * C_i / 100))`` and the last
variant always ends at 10,000. So ``trafficPercent`` is a share of the non-holdout traffic:
a 50/50 experiment with a 10 % holdout sends 45 % of customers to each variant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic.alias_generators import to_camel

from engine.catalog.documents import Experiment
from engine.errors import ValidationError

BUCKETS = 10_000
HOLDOUT = "__holdout__"
_META_FIELDS = ("id", "version", "createdAt", "updatedAt", "deletedAt")


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class VariantSpec:
    key: str
    name: str
    traffic_percent: float
    is_control: bool


@dataclass(frozen=True)
class ExperimentSpec:
    key: str
    name: str
    variants: tuple[VariantSpec, ...]
    holdout_percent: float
    conversion_outcomes: tuple[str, ...]
    alpha: float

    @property
    def control(self) -> VariantSpec:
        """The ``isControl`` variant, else the first one."""
        return next((v for v in self.variants if v.is_control), self.variants[0])

    @property
    def labels(self) -> tuple[str, ...]:
        """Arm labels in bucket order: the holdout first, then the variants."""
        return (HOLDOUT, *(v.key for v in self.variants))

    def bucket_bounds(self) -> tuple[int, ...]:
        """Exclusive upper bucket of each arm in ``labels`` order (the last is 10,000)."""
        holdout = round_half_up(self.holdout_percent * BUCKETS / 100)
        rest = BUCKETS - holdout
        bounds = [holdout]
        cumulative = 0.0
        for variant in self.variants[:-1]:
            cumulative += variant.traffic_percent
            bounds.append(min(BUCKETS, holdout + round_half_up(rest * cumulative / 100)))
        bounds.append(BUCKETS)
        return tuple(bounds)

    def bucket_shares(self) -> dict[str, float]:
        """The share of all customers each arm receives under the mapping (sums to 1)."""
        bounds = self.bucket_bounds()
        lowers = (0, *bounds[:-1])
        return {
            label: (hi - lo) / BUCKETS
            for label, lo, hi in zip(self.labels, lowers, bounds, strict=True)
        }


def parse_experiment(doc: Mapping[str, Any] | Experiment | ExperimentSpec) -> ExperimentSpec:
    """Validate an experiment document; raises ``ValidationError`` naming the bad field."""
    if isinstance(doc, ExperimentSpec):
        return doc
    if not isinstance(doc, Experiment):
        if not isinstance(doc, Mapping):
            raise ValidationError("an experiment must be a JSON object", field="body")
        data = {k: v for k, v in doc.items() if k not in _META_FIELDS}
        try:
            doc = Experiment.model_validate(data)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(to_camel(p) if isinstance(p, str) else str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise ValidationError(f"invalid experiment: {loc or 'body'}: {msg}",
                                  field=loc or "body") from None
    variants = tuple(
        VariantSpec(v.key, v.name or v.key, float(v.traffic_percent), v.is_control)
        for v in doc.variants
    )
    if any(v.key == HOLDOUT for v in variants):
        raise ValidationError(f"variant key {HOLDOUT!r} is reserved for the holdout",
                              field="variants")
    return ExperimentSpec(
        key=doc.key,
        name=doc.name,
        variants=variants,
        holdout_percent=float(doc.holdout_percent),
        conversion_outcomes=tuple(doc.conversion_outcomes),
        alpha=float(doc.alpha),
    )
