"""benchmarks.scaling: inputs of the stated size and validity, growth per 10x step."""

from __future__ import annotations

import pytest

from benchmarks import scaling
from blockgen import is_valid


@pytest.mark.parametrize("name", list(scaling.QUERY_INPUTS))
def test_query_inputs_have_the_size_and_validity_they_claim(name):
    kind, build, valid = scaling.QUERY_INPUTS[name]
    for n in (1_000, 10_000):
        text = build(n)
        assert 0.9 * n <= len(text) <= 1.1 * n
        assert is_valid(text) is valid
    assert kind in ("normal", "hostile")


@pytest.mark.parametrize("name", list(scaling.OVID_INPUTS))
def test_ovid_inputs_have_the_size_they_claim(name):
    _, build = scaling.OVID_INPUTS[name]
    assert 0.9 * 10_000 <= len(build(10_000)) <= 1.1 * 10_000


def test_growth_is_the_ratio_of_times_per_10x_step(monkeypatch):
    monkeypatch.setattr(scaling, "_time", lambda fn, text: len(text) * 1e-6 * (2 if len(text) > 5_000 else 1))
    monkeypatch.setattr(scaling, "QUERY_INPUTS", {"one long word": scaling.QUERY_INPUTS["one long word"]})
    monkeypatch.setattr(scaling, "OVID_INPUTS", {})
    rows = scaling.measure([1_000, 10_000], budget=60)
    assert {r["function"] for r in rows} == {"parse", "repair", "format", "shortest_completion"}
    for row in rows:
        assert row["x_10000"] == pytest.approx(20.0)  # 10x the size, twice the time per character
        assert row["max_growth"] == pytest.approx(20.0)


def test_growth_is_not_computed_from_times_below_a_millisecond(monkeypatch):
    monkeypatch.setattr(scaling, "_time", lambda fn, text: 1e-5)
    monkeypatch.setattr(scaling, "QUERY_INPUTS", {"one long word": scaling.QUERY_INPUTS["one long word"]})
    monkeypatch.setattr(scaling, "OVID_INPUTS", {})
    rows = scaling.measure([1_000, 10_000], budget=60)
    assert all("x_10000" not in row and row["max_growth"] != row["max_growth"] for row in rows)
