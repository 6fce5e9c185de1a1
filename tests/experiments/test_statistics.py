"""The numbers on the results page, checked against values computed by hand."""

from __future__ import annotations

from collections import Counter

import pytest

from app.experiments.service import assign, compare, new_visitor_cookie_value, subject_from_cookie


def test_two_proportions_200_of_1000_against_250_of_1000():
    result = compare(200, 1000, 250, 1000)
    assert result.diff == pytest.approx(0.05)
    # unpooled SE = sqrt(.2*.8/1000 + .25*.75/1000) = 0.018641; 1.96 * SE = 0.036537
    assert result.low == pytest.approx(0.0135, abs=1e-4)
    assert result.high == pytest.approx(0.0865, abs=1e-4)
    # pooled p = .225, SE = sqrt(.225*.775*2/1000) = 0.018675 -> z = 2.677
    assert result.z == pytest.approx(2.68, abs=0.005)
    assert result.p_value == pytest.approx(0.0074, abs=0.0002)
    assert result.significant
    assert result.relative == pytest.approx(0.25)


def test_no_difference_and_degenerate_samples():
    same = compare(50, 500, 50, 500)
    assert same.diff == 0 and same.z == 0 and same.p_value == pytest.approx(1.0)
    assert not same.significant
    assert compare(0, 100, 0, 100).p_value is None  # both 0 %: no test possible, no crash
    assert compare(0, 0, 3, 10) is None  # nobody saw the control yet


def test_a_smaller_sample_is_not_significant():
    result = compare(20, 100, 25, 100)
    assert result.low < 0 < result.high
    assert result.p_value == pytest.approx(0.40, abs=0.01)
    assert not result.significant


def test_assignment_is_deterministic_and_follows_the_weights():
    variants = [{"name": "control", "weight": 80}, {"name": "b", "weight": 20}]
    assert assign("pledge_button", "m:42", variants) == assign("pledge_button", "m:42", variants)
    counts = Counter(assign("pledge_button", f"m:{n}", variants) for n in range(10_000))
    assert 7_700 < counts["control"] < 8_300
    # Another experiment key reshuffles the subjects independently.
    other = [assign("other_key", f"m:{n}", variants) for n in range(200)]
    same = [assign("pledge_button", f"m:{n}", variants) for n in range(200)]
    assert other != same


def test_visitor_cookie_is_signed():
    value = new_visitor_cookie_value()
    subject = subject_from_cookie(value)
    assert subject and subject.startswith("v:") and len(subject) <= 40
    nonce, _ = value.split(".")
    assert subject_from_cookie(f"{nonce}.forged000000000000000") is None
    assert subject_from_cookie("chosen-by-the-client") is None
    assert subject_from_cookie("") is None
