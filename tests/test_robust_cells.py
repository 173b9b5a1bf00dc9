"""The main job's robustness cells: fidelity under attack falls with the budget, the clean pass is
the unattacked link on the same draws, the budget spent is the one asked for, the envelope's
robust metric is the strongest attack's, a defence is attacked through, and DeepSC's BLEU falls
under attack.  Plus: the quick default's grid holds a cell of every kind and stays small."""

from __future__ import annotations

import pytest
import torch

from semguard.evaluation.cells import clear_cache, run_cell
from semguard.evaluation.envelope import configurations
from semguard.evaluation.scenario import load_scenario, parse_scenario
from semguard.evaluation.sweep import plan

ROB = {"scenario": {"name": "rob"}, "images": {"codec": "switched-cbr1_6", "reference_codecs": [],
                                              "baselines": ["jpeg_capacity"], "link_baseline": "jpeg_capacity",
                                              "limit_baselines": ["jpeg_capacity"]},
       "channels": {"names": ["awgn"], "snr_db": [10]}, "task": {"codec": ""}, "text": {"codec": "", },
       "robustness": {"attacks": ["gaussian", "pgd"], "psr_db": [-20, -5], "reference_psr_db": -5, "steps": 3,
                      "images": 1}}


def _by(records):
    return {(r.codec, r.metric): r for r in records}


def test_quick_default_grid_has_every_kind_of_cell_and_is_small() -> None:
    cells = plan(load_scenario("default").quick())
    kinds = {c["kind"] for c in cells}
    assert kinds == {"image", "baseline", "cost", "secrecy", "robustness", "text_robustness", "task", "text"}
    assert len(cells) <= 60, len(cells)
    assert len({c["key"] for c in cells}) == len(cells)                    # every cell its own unit of work


def test_image_robustness_falls_with_budget_and_feeds_the_envelope() -> None:
    clear_cache()
    cells = [c for c in plan(parse_scenario(ROB)) if c["kind"] == "robustness"]
    assert len(cells) == 4
    records = [r for c in cells for r in run_cell(c)]
    got = {(r.codec, r.metric, r.config["psr_db"]): r.value for r in records}
    for attack in ("gaussian", "pgd"):
        label = f"switched-cbr1_6 vs {attack}"
        clean = got[(label, "psnr_clean", -20.0)]
        assert clean == got[(label, "psnr_clean", -5.0)]                   # the same draws at every budget
        assert got[(label, "psnr_under_attack", -5.0)] < got[(label, "psnr_under_attack", -20.0)] < clean
        assert got[(label, "ms_ssim_under_attack", -5.0)] < got[(label, "ms_ssim_clean", -5.0)] <= 1.0
        for psr in (-20.0, -5.0):
            assert got[(label, "measured_psr_db", psr)] == pytest.approx(psr, abs=0.05)
    # white-box PGD hurts more than Gaussian jamming of the same power, and robust_psnr is its value
    assert got[("switched-cbr1_6 vs pgd", "psnr_under_attack", -5.0)] < \
        got[("switched-cbr1_6 vs gaussian", "psnr_under_attack", -5.0)]
    point = configurations(records)[("switched-cbr1_6", "awgn", 10.0)]
    assert point["robust_psnr"] == got[("switched-cbr1_6 vs pgd", "psnr_under_attack", -5.0)]
    assert point["robust_ms_ssim"] == got[("switched-cbr1_6 vs pgd", "ms_ssim_under_attack", -5.0)]


def test_a_defence_is_fitted_off_the_attacked_photos_and_attacked_through() -> None:
    clear_cache()
    spec = {**ROB, "robustness": {**ROB["robustness"], "attacks": ["gaussian"], "psr_db": [-5],
                                  "defenses": ["blanking"]}}
    cells = [c for c in plan(parse_scenario(spec)) if c["kind"] == "robustness"]
    assert [c["name"] for c in cells] == ["switched-cbr1_6", "switched-cbr1_6+blanking"]
    plain, defended = (_by(run_cell(c)) for c in cells)
    # the blanking receiver changes what Bob decodes, with and without attack
    assert defended[("switched-cbr1_6+blanking vs gaussian", "psnr_clean")].value != \
        plain[("switched-cbr1_6 vs gaussian", "psnr_clean")].value
    assert ("switched-cbr1_6+blanking", "robust_psnr") in defended


@pytest.mark.slow
def test_deepsc_bleu_falls_under_attack() -> None:
    clear_cache()
    spec = {**ROB, "images": {**ROB["images"], "codec": "", "baselines": ["jpeg_capacity"]},
            "text": {"codec": "deepsc", "sentences": 8},
            "robustness": {"attacks": ["gaussian"], "psr_db": [-20, 0], "reference_psr_db": 0, "steps": 3,
                           "images": 1, "text_attacks": ["pgd"], "text_sentences": 12, "codecs": ["switched-cbr1_6"]}}
    cells = [c for c in plan(parse_scenario(spec)) if c["kind"] == "text_robustness"]
    assert len(cells) == 2
    got = {(r.metric, r.config["psr_db"]): r for c in cells for r in run_cell(c)}
    clean = got[("bleu1_clean", 0.0)].value
    assert got[("bleu1_under_attack", 0.0)].value < got[("bleu1_under_attack", -20.0)].value <= clean + 1e-9
    assert len(got[("bleu1_under_attack", 0.0)].samples) == 12
    assert torch.tensor(got[("bleu1_under_attack", 0.0)].samples).le(1.0).all()
