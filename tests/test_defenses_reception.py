"""Interference-aware LMMSE reception and the pilot-consistency check: the interference estimate against
Gaussian interference of known power, the LMMSE estimate of a repeated value, the check's false alarms
and detections, the adaptive attacks, and the one-line errors."""

import math

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.interference import (InterferenceAwareDefense, chunk_ids, chunk_interference, chunk_mean,
                                            meta_estimate)
from semguard.defenses.pilot_check import CheckAwarePilotAttack, PilotCheckDefense, data_aided_estimate
from semguard.link import Link
from semguard.registry import build


def _gen(seed=5):
    return torch.Generator().manual_seed(seed)


def test_chunk_ids_and_mean_by_hand():
    ids = chunk_ids(10, 4, tail=2)
    assert ids.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    z = torch.arange(10.0).unsqueeze(0)
    assert chunk_mean(z, ids).tolist() == [[1.5, 5.5, 8.5]]
    assert chunk_ids(5, 2).tolist() == [0, 0, 1, 1, 2]


def test_interference_estimate_unbiased_on_gaussian_interference():
    # symbols x ~ CN(mu, v) with known per-position v, noise CN(0, N0), interference CN(0, I_c) on chunk c:
    # the estimate's mean over blocks is I_c (its standard error here is under 0.01)
    g = _gen(0)
    b, n, chunk = 4000, 64, 16
    mu = F.complex_normal((n,), generator=g) * 0.5
    var = torch.rand(n, generator=g) + 0.2
    n0 = 0.1
    power = torch.tensor([0.0, 0.05, 0.3, 1.0])
    x = mu + F.complex_normal((b, n), generator=g) * var.sqrt()
    j = F.complex_normal((b, n), generator=g) * power.repeat_interleave(chunk).sqrt()
    y = x + F.complex_noise((b, n), torch.tensor(n0), generator=g) + j
    est = chunk_interference(y, torch.full((b, n), n0), mu, var, chunk_ids(n, chunk))
    assert torch.allclose(est.mean(0), power, atol=0.03)
    # no signal scatter, no noise: the estimate is the interference's power exactly
    est0 = chunk_interference(mu + j[:2], torch.zeros(2, n), mu, torch.zeros(n), chunk_ids(n, chunk))
    assert torch.allclose(est0, chunk_mean(j[:2].abs().square(), chunk_ids(n, chunk)), atol=1e-5)


def test_meta_estimate_tells_coherent_shift_from_jamming():
    g = _gen(1)
    m, mu, v, n0 = 32, torch.full((32,), 0.3 + 0.3j), torch.full((32,), 0.01), 0.1
    truth = torch.tensor([0.35 + 0.35j])
    noise = F.complex_noise((1, m), torch.tensor(n0), generator=g)
    # a coherent shift of every copy, far beyond the prior: pulled back to (near) the prior mean
    shifted = truth + 2.0 + noise
    assert abs(complex(meta_estimate(shifted, torch.full((1, m), n0), mu, v, 3.0)[0]) - (0.3 + 0.3j)) < 0.05
    # independent noise only: the LMMSE of the mean, mu + d v / (v + N0 / M)
    y = truth + noise
    d = (y - mu).mean(1)
    spread = max(0.0, float((y - mu - d).abs().square().sum() / (m - 1)) - n0)
    want = complex(mu[0] + d[0] * 0.01 / (0.01 + (n0 + spread) / m))
    assert abs(complex(meta_estimate(y, torch.full((1, m), n0), mu, v, 3.0)[0]) - want) < 1e-5


@pytest.fixture(scope="module")
def task():
    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(1200)
    codec = pretrained("task-fmnist")
    return codec, x[:1000], x[1000:1200], y[1000:1200]


def test_task_receiver_clean_cost_and_adaptive_attack(task):
    codec, ref, x, y = task
    link = Link(codec, AWGN())
    dl = InterferenceAwareDefense(chunk=4).fit(link, ref).wrap(link)
    acc = lambda o: float((o.argmax(1) == y).double().mean())  # noqa: E731
    with torch.no_grad():
        assert abs(acc(dl(x, 10.0, generator=_gen())["output"]) - acc(link(x, 10.0, generator=_gen())["output"])) <= 0.01
    pgd = build("attack", "pgd", surface="channel", psr_db=-5.0, steps=10)
    r = pgd(link, x, 10.0, labels=y, generator=_gen())
    with torch.no_grad():
        replay = acc(dl(x, 10.0, generator=_gen(), interference=r.link["interference"])["output"])
    adaptive = acc(pgd(dl, x, 10.0, labels=y, generator=_gen()).output)
    assert adaptive <= replay + 0.01  # the attack that knows the receiver does at least as well


@pytest.fixture(scope="module")
def image_pilots():
    # the shipped 256x256 photos: the check is fitted on the last four (and their mirror images), tested
    # on the first three; Rayleigh with 8 fading blocks of 4096 symbols and 8 pilots each
    torch.set_num_threads(1)
    photos = shipped_photos()
    codec = pretrained("analog-cbr1_6")
    link = Link(codec, Rayleigh(csi="estimated", pilots=8, coherence=4096))
    ref = torch.cat([photos[3:], photos[3:].flip(-1)])
    dfn = PilotCheckDefense(false_alarm=0.05).fit(link, ref, 10.0, repeats=3)
    return link, dfn, photos[:3]


def _pilot_jam(state, channel, psr_db, seed):
    # |delta|^2 = 10^(psr/10) |h|^2 on every coherence block, random phase
    h = state.h[:, :: (channel.coherence or state.h.shape[1])]
    ph = torch.rand(h.shape, generator=_gen(seed)) * 2 * math.pi
    return (math.sqrt(10 ** (psr_db / 10)) * h.abs() * torch.exp(1j * ph)).to(torch.complex64)


@pytest.mark.slow
def test_pilot_check_flags_minus_10_db_and_not_clean_blocks(image_pilots):
    link, dfn, x = image_pilots
    dl = dfn.wrap(link)
    clean, hit = [], []
    with torch.no_grad():
        for k in range(4):
            o = dl(x, 10.0, generator=_gen(50 + k), decode=False)
            clean.append(dl.codec.check(o["received"], o["state"])[3])
            a = dl(x, 10.0, generator=_gen(50 + k), decode=False,
                   pilot_interference=_pilot_jam(o["state"], link.channel, -10.0, k))
            hit.append(dl.codec.check(a["received"], a["state"])[3])
    far, det = float(torch.cat(clean).double().mean()), float(torch.cat(hit).double().mean())
    # threshold at the 95 % quantile of 24 clean reference scores: on 12 held-out clean blocks at most
    # 2 alarms (binomial tail at 5 %: p ~ 0.02 for more); at -10 dB the pilots move by a third of |h| in
    # a random direction (measured: 1/9 false, 7/9 detected on 9 blocks)
    assert far <= 2 / 12
    assert det >= 0.65


def test_pilot_check_on_task_codec_false_alarm_and_detection(task):
    codec, ref, x, _ = task
    link = Link(codec, Rayleigh(csi="estimated", pilots=8))
    dfn = PilotCheckDefense(false_alarm=0.05).fit(link, ref, 10.0, repeats=1)
    dl = dfn.wrap(link)
    with torch.no_grad():
        o = dl(x, 10.0, generator=_gen(3), decode=False)
        far = float(dl.codec.check(o["received"], o["state"])[3].double().mean())
        dets = []
        for psr in (-10.0, 0.0):
            a = dl(x, 10.0, generator=_gen(3), decode=False, pilot_interference=_pilot_jam(o["state"], link.channel, psr, 1))
            dets.append(float(dl.codec.check(a["received"], a["state"])[3].double().mean()))
    # 5 % of 1000 reference blocks set the threshold: on 200 held-out clean blocks within 3 binomial sds
    assert far <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)
    # 16 symbols give a poor data-aided estimate: the alarm grows with the budget
    assert dets[0] > far and dets[1] > dets[0]


@pytest.mark.slow
def test_data_aided_estimate_recovers_the_fading(image_pilots):
    link, dfn, x = image_pilots
    with torch.no_grad():
        o = link(x, 10.0, generator=_gen(9), decode=False)
        st = o["state"]
        L = link.channel.coherence
        h = st.h[:, ::L]
        est = data_aided_estimate(o["raw"], st.n0, dfn.power, dfn.second, L, st.h_est[:, ::L])
    # the amplitude from the block's power: within 25 % on nine in ten blocks not in a deep fade
    ok = ((est.abs() / h.abs() - 1).abs() < 0.25)[h.abs() > 0.5]
    assert float(ok.double().mean()) >= 0.9


def test_check_aware_attack_evades_more_than_non_adaptive(task):
    # task codec over Rayleigh with 8 pilots, PSR -10 dB: the attack that knows the check is seen less
    # often than pilot PGD crafted on the undefended link and replayed (bench: 0.30 against 0.56)
    codec, ref, x, y = task
    link = Link(codec, Rayleigh(csi="estimated", pilots=8))
    dl = PilotCheckDefense(false_alarm=0.05).fit(link, ref, 10.0, repeats=1).wrap(link)
    r = build("attack", "pilot", psr_db=-10.0, steps=8)(link, x, 10.0, labels=y, generator=_gen())
    with torch.no_grad():
        o = link(x, 10.0, generator=_gen(), decode=False)
        rep = dl(x, 10.0, generator=_gen(), decode=False, pilot_interference=r.link["state"].h_est[:, :1] - o["state"].h_est[:, :1])
        det_na = float(dl.codec.check(rep["received"], rep["state"])[3].double().mean())
    aware = CheckAwarePilotAttack(psr_db=-10.0, steps=8)(dl, x, 10.0, labels=y, generator=_gen())
    det_ad = float(dl.codec.check(aware.link["received"], aware.link["state"])[3].double().mean())
    assert det_ad < det_na - 0.05


def test_bad_input_one_line_errors(task):
    codec, ref, x, y = task
    link = Link(codec, AWGN())
    for kw, msg in (({"chunk": 0}, "chunk must be >= 1"), ({"z": -1.0}, "z must be >= 0"),
                    ({"rel": -0.1}, "rel must be >= 0")):
        with pytest.raises(ValueError, match=msg):
            InterferenceAwareDefense(**kw)
    with pytest.raises(RuntimeError, match="fit\\(\\) it"):
        InterferenceAwareDefense().wrap(link)
    dfn = InterferenceAwareDefense(chunk=4).fit(link, ref[:50])
    with pytest.raises(ValueError, match="fitted on blocks of 16"):
        chunk_interference(torch.zeros(2, 8, dtype=torch.complex64), torch.zeros(2, 8), dfn.mu, dfn.var, dfn.ids)
    with pytest.raises(ValueError, match="csi='estimated'"):
        PilotCheckDefense().fit(link, ref[:50])
    with pytest.raises(ValueError, match="false_alarm must be in"):
        PilotCheckDefense(false_alarm=1.5)
    with pytest.raises(ValueError, match="pilot-check"):
        CheckAwarePilotAttack(psr_db=-10.0, steps=1)(Link(codec, Rayleigh(csi="estimated")), x[:2], 10.0,
                                                           labels=y[:2])
    with pytest.raises(ValueError, match="tail must be"):
        chunk_ids(4, 2, tail=4)
