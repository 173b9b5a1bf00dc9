"""Blind CSI refinement: it finds the residual gain pilot estimates leave, from the block's own symbols."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from semguard.channels import functional as F
from semguard.channels.csi import refine_csi
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.metrics.image import psnr
from semguard.registry import build


def _paired(batch: int, n: int, rho: float, gen: torch.Generator) -> torch.Tensor:
    """Unit-power blocks whose real and imaginary parts have correlation ``rho`` (E[x^2] = 2j rho / 2)."""
    a = torch.randn(batch, n, generator=gen)
    b = rho * a + (1 - rho ** 2) ** 0.5 * torch.randn(batch, n, generator=gen)
    return F.normalize_power(torch.complex(a, b))


@pytest.mark.parametrize("equalizer", ["mmse", "zf", "none"])
def test_refined_estimate_is_much_closer_to_the_true_channel(equalizer):
    gen = torch.Generator().manual_seed(0)
    x = _paired(256, 2048, 0.8, gen)
    ch = build("channel", "rayleigh", csi="estimated", pilots=1, equalizer=equalizer)
    y, st = ch(x, 10.0, generator=gen)
    y2, st2 = refine_csi(y, st)
    before = (st.h_est[:, 0] / st.h[:, 0] - 1).abs().median()
    after = (st2.h_est[:, 0] / st2.h[:, 0] - 1).abs().median()
    assert after < before / 5                                   # 1 pilot at 10 dB: ~0.25 -> a few %
    # the refined symbols are the received ones equalised with the refined estimate
    raw = ch.apply(x, st, generator=torch.Generator().manual_seed(1))
    y3, st3 = refine_csi(ch.equalize(raw, st), st)
    torch.testing.assert_close(y3, raw if equalizer == "none" else F.equalize(raw, st3.h_est, st.n0, equalizer))


def test_perfect_csi_is_left_alone_and_circular_symbols_keep_the_pilot_phase():
    gen = torch.Generator().manual_seed(2)
    x = _paired(64, 2048, 0.8, gen)
    y, st = build("channel", "rayleigh")(x, 10.0, generator=gen)
    y2, st2 = refine_csi(y, st)
    assert y2 is y and st2 is st
    circ = _paired(64, 2048, 0.0, gen)                               # E[x^2] = 0: no phase information
    y, st = build("channel", "rayleigh", csi="estimated", pilots=1)(circ, 10.0, generator=gen)
    _, st2 = refine_csi(y, st)
    ratio = st2.h_est[:, 0] / st.h_est[:, 0]
    torch.testing.assert_close(torch.angle(ratio), torch.zeros(64), atol=1e-5, rtol=0)
    assert (ratio.abs() - 1).abs().max() > 0.01                      # the amplitude is still refined


def test_fast_fading_blocks_are_not_refined():
    gen = torch.Generator().manual_seed(3)
    x = _paired(4, 1024, 0.8, gen)
    y, st = build("channel", "rayleigh", csi="estimated", pilots=1, coherence=64)(x, 10.0, generator=gen)
    y2, st2 = refine_csi(y, st)
    torch.testing.assert_close(st2.h_est, st.h_est)
    torch.testing.assert_close(y2, y)


@pytest.mark.parametrize(("name", "snr_db", "gain_db"), [("softcast-cbr1_6", 10.0, 3.0), ("adjscc-cbr1_6", 0.0, 1.0)])
def test_shipped_codecs_recover_much_of_what_estimated_csi_costs(name, snr_db, gain_db):
    # one pilot per image: softcast gains 5.4 / 6.5 dB at 10 dB, adjscc 1.8 / 2.1 dB at 0 dB (two seeds)
    codec = pretrained(name).eval()
    x = shipped_photos()[:, :, :128, :128]
    ch = build("channel", "rayleigh", csi="estimated", pilots=1)
    out = {}
    with torch.no_grad():
        z = codec.encode(x, snr_db)
        for refined in (True, False):
            y, st = ch(z, snr_db, generator=torch.Generator().manual_seed(4))
            if not refined:                                      # the decoder told nothing about the estimate
                st = dataclasses.replace(st, csi_error_var=None)
            out[refined] = float(psnr(codec.decode(y, st, size=(128, 128)), x).mean())
    assert out[True] > out[False] + gain_db, out
