"""What session 10 added to the threat library: the Carlini-Wagner margin loss and targeted success on
a task codec, the universal perturbation fitted per budget (exact budget, bit-for-bit seed), the
transfer attack on the input, WordNet synonym candidates for word substitution, and the digital
link's pilot jammer."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.attacks.digital import JammedChannel, burst_jam, pilot_jam
from semguard.attacks.evaluate import robust_fidelity
from semguard.attacks.objectives import attack_loss, logit_margin
from semguard.attacks.substitution import synonym_candidates
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.data.wordnet import parse_synset_words, wordnet_synonyms
from semguard.link import Link
from semguard.registry import build


def hit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).float()


@pytest.fixture(scope="module")
def task_case():
    torch.manual_seed(0)
    codec = build("codec", "task", n_symbols=8, width=4).eval()
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    return Link(codec, AWGN()), x


def test_margin_loss_by_hand() -> None:
    z = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    torch.testing.assert_close(logit_margin(z, torch.tensor([0, 2])), torch.tensor([1.5, -2.0]))
    # targeted: z_t - max other, capped at 5; untargeted: max other - z_y
    t = attack_loss("task", z * 10, z, target=torch.tensor([0, 2]), task_loss="margin")
    torch.testing.assert_close(t, torch.tensor([5.0, -20.0]))
    u = attack_loss("task", z, z, labels=torch.tensor([0, 2]), task_loss="margin")
    torch.testing.assert_close(u, torch.tensor([-1.5, 2.0]))
    with pytest.raises(ValueError, match="task_loss must be one of"):
        attack_loss("task", z, z, labels=torch.tensor([0, 2]), task_loss="hinge")
    with pytest.raises(ValueError, match="task_loss must be one of"):
        build("attack", "pgd", surface="symbols", psr_db=0.0, task_loss="hinge")


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_targeted_symbol_attack_succeeds_far_above_chance(task_case, loss: str) -> None:
    link, x = task_case
    with torch.no_grad():
        clean = link(x, 10.0, generator=torch.Generator().manual_seed(0))["output"].argmax(1)
    tgt = (clean + 1) % 10  # never the clean decision: chance of hitting it without an attack is ~0
    atk = build("attack", "pgd", surface="symbols", psr_db=3.0, steps=30, targeted=True, task_loss=loss)
    r = robust_fidelity(link, x, atk, 10.0, metric=hit, labels=tgt, targets=tgt, batch=40)
    noise = robust_fidelity(link, x, build("attack", "gaussian", surface="symbols", psr_db=3.0), 10.0,
                            metric=hit, labels=tgt, batch=40)
    assert r["attacked"] >= 0.6 > 0.1 + noise["attacked"]
    torch.testing.assert_close(torch.tensor(r["measured_budget"]), torch.tensor(3.0), atol=1e-4, rtol=0)


def test_universal_fitted_per_budget_is_exact_and_reproducible(task_case) -> None:
    link, x = task_case
    y = torch.arange(40) % 10
    for psr in (-15.0, -5.0):
        a = build("attack", "universal", surface="channel", psr_db=psr, steps=3, batch=8, seed=4).fit(link, x, 10.0, labels=y)
        b = build("attack", "universal", surface="channel", psr_db=psr, steps=3, batch=8, seed=4).fit(link, x, 10.0, labels=y)
        assert torch.equal(a.delta, b.delta)  # a fixed seed: the same block bit for bit
        torch.testing.assert_close(F.block_power(a.delta[None]), torch.ones(1))  # the unit-power block
        r = a(link, x, 10.0, labels=y)
        torch.testing.assert_close(r.measured, torch.full((40,), psr), atol=1e-4, rtol=0)


def test_transfer_on_the_input_stays_within_eps(task_case) -> None:
    link, x = task_case
    torch.manual_seed(5)
    sur = build("codec", "task", n_symbols=8, width=2).eval()
    y = torch.arange(40) % 10
    atk = build("attack", "transfer", surrogate=sur, surface="input", eps=0.05, steps=3, seed=1)
    r = atk(link, x, 10.0, labels=y)
    assert r.threat_model.knowledge == "transfer" and r.threat_model.surface == "input"
    assert float((r.perturbation).abs().max()) <= 0.05 + 1e-7
    r2 = build("attack", "transfer", surrogate=sur, surface="input", eps=0.05, steps=3, seed=1)(link, x, 10.0, labels=y)
    assert torch.equal(r.perturbation, r2.perturbation) and torch.equal(r.output, r2.output)


def test_wordnet_synset_lines_and_synonyms(tmp_path) -> None:
    line = ("00001740 00 a 03 able 0 capable(a) 0 New_York 0 005 = 05200169 n 0000 | having the "
            "necessary means; \"able to swim\"")
    assert parse_synset_words(line) == ["able", "capable"]
    assert parse_synset_words("  1 This software and database is being provided") == []
    (tmp_path / "data.noun").write_text("  1 licence\n00002 03 n 02 car 0 auto 0 000 | a car\n"
                                        "00003 03 n 02 car 0 machine 0 000 | a machine\n")
    for pos in ("verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text("")
    syn = wordnet_synonyms(tmp_path)
    assert syn == {"car": frozenset({"auto", "machine"}), "auto": frozenset({"car"}), "machine": frozenset({"car"})}
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        wordnet_synonyms(tmp_path / "missing")


def test_synonym_table_and_substitution_only_uses_it() -> None:
    vocab = {"[PAD]": 0, "[UNK]": 1, "car": 2, "auto": 3, "machine": 4, "red": 5, "##s": 6}
    syn = {"car": frozenset({"auto", "machine", "motorcar"}), "auto": frozenset({"car"})}
    table = synonym_candidates(vocab, syn, 3)
    assert table.tolist() == [[0, 0, 0], [1, 1, 1], [3, 4, 2], [2, 3, 3], [4, 4, 4], [5, 5, 5], [6, 6, 6]]
    torch.manual_seed(0)
    codec = build("codec", "deepsc", vocab_size=7, d_model=16, heads=2, layers=1, ff=32).eval()
    link = Link(codec, AWGN())
    tok = torch.tensor([[2, 5, 4, 6], [5, 4, 6, 5]])  # row 1 has no token with a synonym
    for rnd in (False, True):
        r = build("attack", "word-substitution", k=2, random=rnd, neighbours=table)(link, tok, 20.0)
        assert r.measured.tolist() == [1.0, 0.0]  # only "car" can change, and only to auto / machine
        assert r.perturbation[0, 0] in (3, 4) and torch.equal(r.perturbation[:, 1:], tok[:, 1:])
        assert torch.equal(r.perturbation[1], tok[1])


def test_pilot_jammer_turns_the_estimate_by_arcsin_r() -> None:
    ch = Rayleigh(csi="estimated", coherence=8)
    for psr in (-20.0, -6.0):
        r = 10 ** (psr / 20)
        clean = ch.sample_state(3, 32, 20.0, generator=torch.Generator().manual_seed(1))
        hb = clean.h[:, ::8]
        for mode, turn, scale in (("phase", math.asin(r), math.sqrt(1 - r * r)), ("scale", 0.0, 1 - r)):
            jam = pilot_jam(psr, mode)
            torch.testing.assert_close(F.psr_db(jam(hb), hb), torch.full((3,), psr), atol=1e-4, rtol=0)
            ratio = (hb + jam(hb)) / hb  # a noiseless estimate h becomes h (1 + r e^{j theta})
            torch.testing.assert_close(ratio.angle().abs(), torch.full_like(ratio.real, turn), atol=1e-5, rtol=0)
            torch.testing.assert_close(ratio.abs(), torch.full_like(ratio.real, scale), atol=1e-5, rtol=0)
            # through the channel: the same draw, the estimate moved by exactly the jam in every block
            s = JammedChannel(ch, pilot_jammer=jam).sample_state(3, 32, 20.0, generator=torch.Generator().manual_seed(1))
            torch.testing.assert_close(s.h_est - clean.h_est, jam(hb).repeat_interleave(8, dim=1))
            assert torch.equal(s.h, clean.h)
    with pytest.raises(ValueError, match="pilot_jammer"):
        JammedChannel(AWGN(), pilot_jammer=pilot_jam(-10.0))
    with pytest.raises(ValueError, match="mode must be one of"):
        pilot_jam(-10.0, "spin")
    with pytest.raises(ValueError, match="psr_db must be finite"):
        pilot_jam(float("nan"))


def test_burst_jammer_spends_the_block_budget_on_its_window() -> None:
    ch = Rayleigh()
    x = F.normalize_power(F.complex_normal((2, 64), generator=torch.Generator().manual_seed(0)))
    state = ch.sample_state(2, 64, 10.0, generator=torch.Generator().manual_seed(1))
    j = burst_jam(-12.0, 0.25)(x, state)
    torch.testing.assert_close(F.psr_db(j, state.h * x), torch.full((2,), -12.0), atol=1e-4, rtol=0)
    assert bool((j[:, 16:] == 0).all()) and bool((j[:, :16] != 0).all())
    with pytest.raises(ValueError, match="fraction must be in"):
        burst_jam(-12.0, 0.0)
