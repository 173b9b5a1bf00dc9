"""Slow: the shipped DeepSC against the digital baseline on held-out sentences (bench/text.py)."""

from __future__ import annotations

import json

import pytest

from bench_module import load_bench


@pytest.mark.slow
def test_deepsc_beats_the_cliff_and_meets_target_on_awgn(tmp_path):
    bench = load_bench("text")
    out = tmp_path / "text.json"
    assert bench.main(["--out", str(out), "--n", "300", "--snrs", "0", "3", "6", "18",
                       "--channels", "awgn", "--no-similarity"]) == 0
    res = {(r["snr_db"], r["system"]): r for r in json.loads(out.read_text())["results"]}
    for snr in (0.0, 3.0):  # below 6 dB the digital link is past its cliff
        assert res[(snr, "deepsc")]["bleu1"] > res[(snr, "digital")]["bleu1"] + 0.2
    for snr in (6.0, 18.0):
        assert res[(snr, "deepsc")]["bleu1"] >= 0.9
    assert res[(18.0, "digital")]["decoded_fraction"] > 0.95  # the baseline works when it can
    uses = {r["channel_uses_per_sentence"] for r in res.values()}
    assert len(uses) == 1  # both systems at the same channel uses
