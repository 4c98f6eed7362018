"""Names of the engine's internal columns on the candidate frame.

Catalog columns keep their namespaces (``offer.*``, ``creative.*``, ``channel.*``,
``placement.*``, bare offer custom fields); customer attributes are ``customer.*``, request
attributes ``attributes.*``, per-request values ``request.*``. Engine bookkeeping columns
start with an underscore.
"""

REQ = "_req"  # request index within the call (UInt32); every window runs over it
TROW = "_trow"  # row of the static candidate table (offer x creative)
MATCH_GROUP = "_mgroup"  # index of the request's match key among the call's few keys
SLOT = "_slot"  # placement slot within the request (0 in single-placement mode)
SLOT_PLACEMENT = "_slot.placement"  # requested placement (id or slot type) of the slot
SLOT_LIMIT = "_slot.limit"  # max decisions of the slot
DEDUPE = "_dedupe"  # multi-placement: resolve slots sequentially without repeating offers
SEGMENTS = "_segments"  # request segments + enriched customer segment(s), List(String)
DROP = "_drop"  # index of the node that removed the candidate (null = alive)
DROP_BY = "_drop_by"  # id of the rule / policy that removed it
REASON = "_reason"  # human-readable reason of the removal
FIT = "_fit"  # fitMultiplier (1.0, lowered by failed soft rules)
SCORE = "_score"
PROPENSITY = "_p"  # adaptive propensity of the offer
OFFER_ORDER = "_oord"  # static tie-break: priority desc, offer id asc
CREATIVE_PREF = "_cpref"  # static best-creative order: weight desc, creative id asc
PRIORITY_UNIT = "_prio"  # offer priority / 100 (exact IEEE division, computed once)
WEIGHT_UNIT = "_weight"  # creative weight / 100 (1.0 without a creative)
MANDATORY = "offer.mandatory"
RANK = "_rank"
ELIMINATED = "_eliminated"  # PRIE: a zero factor with positive weight
OK = "_ok"  # eligible, best creative of its offer, within diversity / mandatory caps
SELECTED = "_sel"  # returned
FACTORS = "_factors"  # scoring factors (trace)

CUSTOMER_ID = "customer_id"
REQ_OUT = "request_index"  # _req in output frames
OFFER_ID = "offer.id"
CREATIVE_ID = "creative.id"
CHANNEL_ID = "channel.id"
PLACEMENT_ID = "placement.id"
CATEGORY_ID = "offer.categoryId"

R_CHANNEL = "request.channel"
R_CHANNEL_ID = "request.channelId"
R_PLACEMENT = "request.placement"
R_LIMIT = "request.limit"
R_SEGMENTS = "request.segments"
R_EXCLUDE_OFFERS = "request.excludeOffers"
R_EXCLUDE_CREATIVES = "request.excludeCreatives"
