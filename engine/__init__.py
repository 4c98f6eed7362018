"""nextbest decisioning core: formulas, flows, scoring and the store."""
