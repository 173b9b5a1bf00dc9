"""SNR-adaptive emergency text: the rule fitted on held-out rows, hand-checked on made-up rows."""

import json

import pytest
from bench_module import load_bench

from semguard.network.emergency_adaptive import adaptive_rows, choose, fit_rule, uses_ratio
from semguard.network.emergency_text import gain_ci


def _row(snr, scheme, crit, other, uses):
    return {"snr_db": snr, "scheme": scheme, "critical_recall": crit, "other_word_accuracy": other,
            "channel_uses": uses, "hits": [round(100 * crit)], "words": [100]}


#: uniform loses the critical words below 2 dB; A (1.3x uses) and B (3x) keep them at a cost
FIT = [_row(0, "uniform", 0.3, 0.6, 100), _row(1, "uniform", 0.6, 0.8, 100), _row(2, "uniform", 0.95, 0.97, 100),
       _row(0, "A", 0.7, 0.1, 130), _row(1, "A", 0.92, 0.3, 130), _row(2, "A", 0.97, 0.4, 130),
       _row(0, "B", 0.8, 0.05, 300), _row(1, "B", 0.95, 0.1, 300), _row(2, "B", 0.99, 0.1, 300)]


def test_rule_hand_checked():
    """0 dB: nothing reaches 0.9, so the best critical recall (B); 1 dB: A and B reach it, A keeps
    more other words; 2 dB: uniform reaches it and keeps the most.  Capped at 1.5x uniform's
    uses, B is out and A is sent at 0 dB."""
    assert uses_ratio(FIT, "A") == pytest.approx(1.3) and uses_ratio(FIT, "B") == pytest.approx(3.0)
    assert fit_rule(FIT, ["A", "B"]) == {0: "B", 1: "A", 2: "uniform"}
    assert fit_rule(FIT, ["A", "B"], max_uses=1.5) == {0: "A", 1: "A", 2: "uniform"}
    assert fit_rule(FIT, ["A", "B"], threshold=0.96) == {0: "B", 1: "B", 2: "A"}
    assert fit_rule(FIT, []) == {0: "uniform", 1: "uniform", 2: "uniform"}


def test_choose_and_adaptive_rows():
    rule = {0.0: "B", 1.0: "A", 2.0: "uniform"}
    assert [choose(rule, s) for s in (-3, 0, 0.5, 1, 1.99, 2, 9)] == ["B", "B", "B", "A", "A", "uniform", "uniform"]
    test = [_row(r["snr_db"], r["scheme"], r["critical_recall"] - 0.05, r["other_word_accuracy"], r["channel_uses"])
            for r in FIT]                                                          # other rows, same schemes
    ad = adaptive_rows(test, rule)
    assert [(r["snr_db"], r["chosen"], r["scheme"]) for r in ad] == [(0, "B", "adaptive"), (1, "A", "adaptive"),
                                                                    (2, "uniform", "adaptive")]
    assert [r["critical_recall"] for r in ad] == pytest.approx([0.75, 0.87, 0.9])
    assert [r["channel_uses"] for r in ad] == [300, 130, 100]
    g = gain_ci(test + ad, 0.7, "adaptive", draws=10)
    assert g["uniform"] == pytest.approx(1 + (0.7 - 0.55) / (0.9 - 0.55))          # uniform 0.55 -> 0.9 over 1-2 dB
    assert g["adaptive"] == 0.0 and g["gain_db"] == pytest.approx(g["uniform"])
    with pytest.raises(ValueError, match="no such row"):
        adaptive_rows([r for r in test if not (r["scheme"] == "A" and r["snr_db"] == 1)], rule)


def test_bad_input_one_line():
    for call in (lambda: fit_rule(FIT, ["A"], threshold=0), lambda: fit_rule(FIT[3:], ["A"]),
                 lambda: uses_ratio(FIT, "C"), lambda: choose({}, 0.0)):
        with pytest.raises(ValueError) as e:
            call()
        assert "\n" not in str(e.value)


def test_gain_ci_uses_only_the_snrs_both_schemes_have():
    """Uniform run at 0, 1, 2 dB and A only at 1, 2 dB: A's curve must be read against uniform's
    at 1 and 2 dB (uniform 0.6 -> 0.95 reaches 0.9 at 1 + 0.3 / 0.35 dB; A 0.92 at 1 dB)."""
    rows = [r for r in FIT if not (r["scheme"] == "A" and r["snr_db"] == 0)]
    g = gain_ci(rows, 0.9, "A", draws=10)
    assert g["uniform"] == pytest.approx(1 + 0.3 / 0.35) and g["A"] == 1.0
    with pytest.raises(ValueError, match="common SNR"):
        gain_ci(rows + [_row(7, "C", 1.0, 1.0, 100)], 0.9, "C", draws=10)


def test_bench_merges_runs_by_rate_and_pool(tmp_path):
    """bench/network.py's merge: schemes renamed by rate cap and pooling frame, uniform kept once
    and refused when two runs disagree on it."""
    bench = load_bench("network")

    def run(name, rate, pool, uniform_hits):
        rows = [dict(_row(0, "uniform", 0.3, 0.6, 100), hits=uniform_hits), _row(0, "ldpc+6dB", 0.7, 0.1, 300)]
        lex = {"source": "s", "split": "fit", "evaluated_sentences": 1, "oov_rate": 0.2, "ldpc_max_rate": rate,
               "ldpc_pool": pool}
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"emergency_oov": {"lexicon": lex, "rows": rows}}))
        return str(p)

    rows, lex = bench._merged_rows([run("a", 0.25, 1, [30]), run("b", 0.125, 16, [30])])
    assert [r["scheme"] for r in rows] == ["uniform", "ldpc+6dB@r0.25", "ldpc+6dB@r0.125+pool16"]
    assert lex["split"] == "fit"
    with pytest.raises(SystemExit, match="uniform at 0 dB differs"):
        bench._merged_rows([run("a", 0.25, 1, [30]), run("c", 0.5, 1, [31])])
