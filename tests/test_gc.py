"""`asyncrun._gc`: the collector is paused while a file is imported and restored after, errors included."""

from __future__ import annotations

import gc

import pytest

from asyncrun import _gc


@pytest.fixture(autouse=True)
def unfrozen():
    yield
    gc.unfreeze()  # this test process lives on: give the frozen objects back to the collector
    gc.enable()


def test_loading_pauses_collection_then_freezes_and_restores_it() -> None:
    gc.unfreeze()
    with _gc.loading():
        assert not gc.isenabled()
        kept = [object() for _ in range(100)]
    assert gc.isenabled()
    assert gc.get_freeze_count() > len(kept)


def test_loading_restores_collection_after_an_error() -> None:
    with pytest.raises(ZeroDivisionError), _gc.loading():
        1 / 0  # noqa: B018
    assert gc.isenabled()


def test_loading_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with _gc.loading():
        pass
    assert not gc.isenabled()
