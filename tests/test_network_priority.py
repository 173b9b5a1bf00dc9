"""Priority-aware transmission: weighted water-filling, region fidelity, critical words, jammer."""

from collections import Counter

import pytest
import torch

from semguard.codecs.analog import waterfilling_gains
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.network.emergency import gain_at, image_sweep, snr_to_reach
from semguard.network.priority import jammer, priority_gains, region_psnr, roi_weights
from semguard.network.priority_text import allocate_power, critical_words


def test_priority_gains_reduce_to_waterfilling_and_keep_power():
    lam = torch.tensor([4.0, 1.0, 0.25, 0.01])
    g = priority_gains(lam, torch.ones(3), 10.0)
    assert torch.allclose(g, waterfilling_gains(lam, 10.0).expand(3, 4), rtol=1e-5)
    w = torch.tensor([8.0, 1.0, 1.0])
    g = priority_gains(lam, w, 10.0)
    assert torch.allclose((g.square() * lam).mean(), torch.tensor(1.0), atol=1e-4)   # same total power
    assert (g[0] > g[1]).all()                                                       # the important block gets more
    # the weighted Lagrangian: where a coefficient is on, sqrt(w lam) (1 + P snr)^-1 ... P = g^2 lam
    # satisfies w lam snr / (1 + P snr)^2 = mu for one common mu
    P = g.square() * lam
    on = P > 1e-2
    mu = (w.unsqueeze(1) * lam * 10.0 / (1 + P * 10.0).square())[on]
    assert torch.allclose(mu, mu.mean().expand_as(mu), rtol=1e-3)
    with pytest.raises(ValueError, match="> 0"):
        priority_gains(lam, torch.tensor([1.0, 0.0]), 10.0)


def test_region_helpers():
    w, mask = roi_weights((64, 64), (0, 0, 20, 40), block=16, weight=5.0)
    assert w.tolist() == [5, 5, 5, 1, 5, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1]     # 2 block rows x 3 block cols
    assert int(mask.sum()) == 800
    x = torch.zeros(1, 3, 64, 64)
    xh = x.clone()
    xh[..., 0, 0] = 0.1                                    # error 0.01 on 3 of 2400 region values
    assert float(region_psnr(xh, x, mask)) == pytest.approx(10 * torch.log10(torch.tensor(2400 / 0.03)).item(), rel=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        roi_weights((64, 64), (50, 0, 20, 10))


def test_jammer_power_and_targeting():
    g = torch.Generator().manual_seed(0)
    power = torch.ones(2, 4000)
    power[:, :1000] = 3.0
    j = jammer((2, 4000), power, psr_db=-10.0, fraction=0.25, targeted=True, generator=g)
    assert (j[:, 1000:] == 0).all()                        # a targeted jammer hits the strongest symbols
    total = j.abs().square().sum(1) / power.sum(1)
    assert torch.allclose(total, torch.full((2,), 0.1), rtol=0.08)


def test_critical_words_and_power_allocation():
    counts = Counter({"the": 10, "ambulance": 1, "street": 5})
    assert critical_words("the ambulance reached 12 street seven", counts) == [False, True, True, True, False, True]
    crit = torch.tensor([[True, False, False, False], [False, False, False, False]])
    p = allocate_power(crit, torch.tensor([4, 3]), 3.0)
    assert torch.allclose(p.sum(1), torch.tensor([4.0, 3.0]))                       # energy unchanged
    assert p[0, 0] == pytest.approx(10 ** 0.3, rel=1e-5) and p[1, 3] == 0


def test_snr_to_reach_interpolates():
    assert snr_to_reach([0, 2, 4], [10, 20, 30], 25) == 3.0
    assert snr_to_reach([0, 2], [10, 20], 30) is None
    rows = [{"scheme": "uniform", "snr_db": s, "m": v} for s, v in [(0, 10), (2, 20), (4, 30)]] + \
           [{"scheme": "priority", "snr_db": s, "m": v} for s, v in [(0, 20), (2, 30)]]
    assert gain_at(rows, "m", 25)["gain_db"] == 2.0


def test_priority_protects_the_region_on_a_shipped_photo():
    torch.set_num_threads(1)
    x = shipped_photos()[:1]
    rows = image_sweep(x, [0.0], codec=pretrained("softcast-cbr1_6"))
    u, p = rows
    assert u["scheme"] == "uniform" and p["scheme"] == "priority"
    assert p["roi_psnr"] > u["roi_psnr"] + 2.0
    assert p["background_psnr"] < u["background_psnr"]                              # paid for by the rest


def test_text_repetition_costs_channel_uses_and_helps_critical_words():
    from semguard.data.text import load_shipped
    from semguard.network.emergency_text import text_sweep
    torch.set_num_threads(1)
    s = load_shipped()
    rows = {r["scheme"]: r for r in text_sweep(s[:40], [1.0], reference=s)}
    u, rep, pw = rows["uniform"], rows["repeat"], rows["power"]
    assert u["critical_words"] > 0
    assert pw["channel_uses"] == u["channel_uses"] < rep["channel_uses"]
    assert rep["critical_recall"] > u["critical_recall"]
    eq = rows["repeat-energy"]                      # same uses as repeat, at uniform's energy: in between
    assert eq["channel_uses"] == rep["channel_uses"]
    assert eq["critical_recall"] <= rep["critical_recall"]


def test_schedule_hand_computed_and_truncation_degrades_gracefully():
    from semguard.network.schedule import schedule, send_truncated
    from semguard.registry import build
    sizes, crit = [100, 100, 100], [False, False, True]
    assert schedule(sizes, crit, 150, "fifo").tolist() == [100, 50, 0]
    assert schedule(sizes, crit, 150, "uniform").tolist() == [50, 50, 50]
    assert schedule(sizes, crit, 150, "priority").tolist() == [25, 25, 100]
    assert schedule(sizes, crit, 60, "priority").tolist() == [0, 0, 60]
    with pytest.raises(ValueError, match="policy must be one of"):
        schedule(sizes, crit, 10, "lottery")
    codec = pretrained("softcast-cbr1_6")
    x = shipped_photos()[:1]
    ch = build("channel", "awgn")
    full = codec.n_symbols(tuple(x.shape))

    def psnr(uses):
        xh = send_truncated(codec, x, uses, ch, 10.0, generator=torch.Generator().manual_seed(0))
        return float(10 * torch.log10(1 / (xh - x).square().mean()))
    p0, p10, p50, p100 = psnr(0), psnr(full // 10), psnr(full // 2), psnr(full)
    assert p0 < p10 < p50 < p100
    # at full size it is the same linear scheme as PrioritySoftCast with uniform weights
    from semguard.network.priority import PrioritySoftCast
    ps = PrioritySoftCast(codec)
    s, scale = ps.encode(x)
    y, st = ch(s, 10.0, generator=torch.Generator().manual_seed(1))
    ref = float(10 * torch.log10(1 / (ps.decode(y, st, scale, (256, 256)) - x).square().mean()))
    assert abs(p100 - ref) < 0.2
