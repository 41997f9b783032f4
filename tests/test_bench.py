"""The benchmark's percentiles: what the README's p50 and p95 mean."""

from __future__ import annotations

import pytest

from training.bench import percentile


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two():
    six = [3.1, 1.2, 2.2, 1.9, 2.1, 2.3]  # six invoices, as docket bench times them
    assert percentile(six, 0.5) == pytest.approx((2.1 + 2.2) / 2)
    assert percentile([0.4], 0.5) == 0.4


def test_p95_interpolates_between_the_two_slowest_of_six():
    six = [1.0, 2.0, 3.0, 4.0, 5.0, 10.0]
    assert percentile(six, 0.95) == pytest.approx(5.0 + (10.0 - 5.0) * 0.75)
    assert percentile(six, 1.0) == 10.0 and percentile(six, 0.0) == 1.0
