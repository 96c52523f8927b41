"""The public API and the error tree."""

from __future__ import annotations

import inspect

import adapter
from adapter import errors


def test_all_is_sorted_and_complete() -> None:
    assert adapter.__all__ == sorted(adapter.__all__)
    for name in adapter.__all__:
        assert hasattr(adapter, name), name


def test_every_error_has_a_unique_code_and_renders_as_operation_outcome() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.AdapterError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    for cls in classes:
        exc = cls("something went wrong", location="items[1].request")
        outcome = exc.to_operation_outcome()
        assert outcome["issue"][0]["details"]["coding"][0]["code"] == cls.code
        assert outcome["issue"][0]["expression"] == ["items[1].request"]
        assert str(exc) == f"[{cls.code}] something went wrong (at items[1].request)"
