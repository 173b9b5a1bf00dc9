"""The printed tables keep records apart that differ in attack, budget or defence."""

import pytest

from semguard.evaluation.records import Record
from semguard.evaluation.report import format_table, pivot, variant


def _r(value, **config):
    return Record("switched-cbr1_6", "awgn", 10.0, "robust_psnr", value, config)


def test_robust_records_get_their_own_rows() -> None:
    recs = [_r(28.1, attack="gaussian", psr_db=-10.0), _r(8.7, attack="pgd", psr_db=-10.0),
            _r(14.0, attack="pgd", psr_db=-20.0), _r(12.5, attack="pgd", psr_db=-10.0, defense="blanking")]
    table = pivot(recs, "robust_psnr")
    assert table == {("switched-cbr1_6 gaussian -10dB", "awgn"): {10.0: 28.1},
                     ("switched-cbr1_6 pgd -10dB", "awgn"): {10.0: 8.7},
                     ("switched-cbr1_6 pgd -20dB", "awgn"): {10.0: 14.0},
                     ("switched-cbr1_6 pgd -10dB +blanking", "awgn"): {10.0: 12.5}}
    text = format_table(recs, "robust_psnr")
    assert "pgd -10dB / awgn" in text and "8.70" in text and "28.10" in text


def test_plain_records_keep_the_codec_name() -> None:
    assert variant(Record("adjscc-cbr1_6", "awgn", 0.0, "psnr", 30.0, {"cbr": 1 / 6})) == "adjscc-cbr1_6"


def test_two_records_for_one_cell_are_refused() -> None:
    with pytest.raises(ValueError, match="two robust_psnr records for switched-cbr1_6 pgd -10dB"):
        pivot([_r(8.7, attack="pgd", psr_db=-10.0), _r(9.0, attack="pgd", psr_db=-10.0)], "robust_psnr")
