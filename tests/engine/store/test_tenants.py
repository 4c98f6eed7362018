from __future__ import annotations

import pytest

from engine.errors import NotFoundError
from engine.store import Store


def test_set_settings_replaces_the_tenants_settings_and_no_other(store: Store) -> None:
    assert store.tenants.get("acme")["settings"] == {}
    store.tenants.set_settings("acme", {"holdoutPercentage": 5, "nested": {"a": 1}})
    store.tenants.set_settings("acme", {"holdoutPercentage": 10})
    assert store.tenants.get("acme")["settings"] == {"holdoutPercentage": 10}
    assert store.tenants.get("globex")["settings"] == {}


def test_set_settings_of_an_unknown_tenant_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="tenant 'nope' not found"):
        store.tenants.set_settings("nope", {"holdoutPercentage": 5})
    assert not store.tenants.exists("nope")
