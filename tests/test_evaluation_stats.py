"""Paired gaps between systems: hand-computed numbers, SciPy's paired t interval, the report's pairing."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from semguard.evaluation.records import Record
from semguard.evaluation.report import format_gaps, gaps
from semguard.evaluation.stats import paired_gap


def test_paired_gap_by_hand() -> None:
    # differences 2, 3, 2, 4: mean 2.75, sd sqrt(2.75 / 3), t(0.975, 3) = 3.18245
    g = paired_gap([3, 5, 4, 8], [1, 2, 2, 4])
    assert g.mean == pytest.approx(2.75) and g.n == 4
    assert g.half_width == pytest.approx(3.182446 * math.sqrt(2.75 / 3) / 2, rel=1e-5)
    assert g.low == pytest.approx(2.75 - g.half_width) and g.to_json()["half_width"] == g.half_width


def test_paired_gap_matches_scipy_paired_t_interval() -> None:
    a = [30.1, 27.4, 33.9, 25.2, 29.8, 31.0, 28.7]
    b = [31.0, 29.9, 34.1, 27.7, 30.2, 33.5, 29.0]
    ci = stats.ttest_rel(a, b).confidence_interval(0.9)
    g = paired_gap(a, b, level=0.9)
    assert (g.low, g.high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_draws_are_averaged_per_image_before_the_interval() -> None:
    # two draws of two images, draw-major: image 0 differs by 1 and 3 (mean 2), image 1 by 4 and 6 (5)
    g = paired_gap([1, 4, 3, 6], [0, 0, 0, 0], draws=2)
    assert g.n == 2 and g.mean == pytest.approx(3.5)
    assert g.half_width == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(4.5) / math.sqrt(2))
    one = paired_gap([5.0], [4.0])
    assert one.mean == 1.0 and math.isnan(one.half_width) and one.to_json()["half_width"] is None


@pytest.mark.parametrize(("a", "b", "draws", "match"), [
    ([1, 2], [1], 1, "equal lengths"), ([1, 2, 3], [1, 2, 3], 2, "split into 2 draws"), ([], [], 1, "split")])
def test_paired_gap_refuses_unpaired_samples(a: list[float], b: list[float], draws: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        paired_gap(a, b, draws=draws)


def _rec(codec: str, snr: float, samples: list[float] | None, metric: str = "psnr",
         value: float | None = None) -> Record:
    mean = sum(samples) / len(samples) if samples else float(value or 0)
    return Record(codec, "awgn", snr, metric, mean, {"realizations": 1}, samples)


def test_gaps_take_the_best_reference_per_snr_and_pair_images() -> None:
    records = [
        _rec("ours", 0.0, [20, 22, 24]), _rec("ours", 10.0, [30, 31, 35]),
        _rec("jpeg", 0.0, [21, 21, 21]), _rec("jpeg", 10.0, [31, 32, 33]),
        _rec("webp", 0.0, [19, 20, 21]), _rec("webp", 10.0, [33, 34, 35]),
        _rec("webp", 20.0, [40, 40, 40]),  # ours has no 20 dB record: no gap there
        _rec("ours", 0.0, [0.5, 0.6, 0.7], metric="ssim"),
    ]
    table = gaps(records, "ours", ["jpeg", "webp"])
    assert set(table) == {"awgn"} and set(table["awgn"]) == {0.0, 10.0}
    assert table["awgn"][0.0].mean == pytest.approx(1.0)  # against jpeg (mean 21 > webp's 20)
    assert table["awgn"][10.0].mean == pytest.approx(-2.0)  # against webp (34 > 32)
    assert table["awgn"][10.0].half_width == pytest.approx(paired_gap([30, 31, 35], [33, 34, 35]).half_width)
    text = format_gaps(table, "ours - best")
    assert text.splitlines()[0] == "ours - best" and "+1.00±" in text and "-2.00±" in text


def test_gaps_without_samples_fall_back_to_the_means() -> None:
    records = [_rec("ours", 5.0, None, value=28.0), _rec("link", 5.0, [30.0, 31.0])]
    g = gaps(records, "ours", ["link"])["awgn"][5.0]
    assert g.mean == pytest.approx(-2.5) and math.isnan(g.half_width)
    assert gaps(records, "ours", ["link"], reference_metric="psnr_expected") == {}
