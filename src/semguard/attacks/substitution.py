"""A discrete input attack on text: substitute up to ``k`` tokens of each sentence by one of their
nearest tokens (cosine similarity of the codec's own token embeddings), greedily, each round taking
the substitution that moves what Bob receives furthest from the sent sentence (the token
cross-entropy of Bob's decoded logits against the original sentence, the semantic objective).

The tokens are the codec's word pieces; a substitution replaces one piece.  With ``neighbours=`` the
candidates come from a table instead, e.g. :func:`synonym_candidates`: WordNet synonyms of the word a
token spells that are themselves whole tokens of the vocabulary (the meaning-preserving attack of
the issue); a token with fewer synonyms than columns is padded with itself, never tried.

With ``score=`` each round is scored by a black-box function of Bob's decoded logits instead, e.g.
:func:`semguard.attacks.sentence.similarity_score`: minus the all-MiniLM-L6-v2 similarity of the
sentence Bob reads to the sent one, the metric the evaluation reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from semguard.attacks.base import Attack, AttackResult, attacker_generator, check_generator, frozen
from semguard.attacks.objectives import attack_loss, check_objective
from semguard.attacks.threat import ThreatModel
from semguard.channels.base import as_snr_tensor
from semguard.link import Link
from semguard.registry import register

__all__ = ["WordSubstitution", "nearest_tokens", "synonym_candidates"]

_SPECIAL = 2  # ids below this are pad / unknown


def nearest_tokens(embedding: Tensor, m: int) -> Tensor:
    """For each token id, its ``m`` nearest other ids by cosine similarity of ``embedding [V, d]``:
    ``[V, m]`` (special ids never proposed)."""
    e = torch.nn.functional.normalize(embedding.detach().float(), dim=1)
    sim = e @ e.T
    sim.fill_diagonal_(-2.0)
    sim[:, :_SPECIAL] = -2.0
    return sim.topk(m, dim=1).indices


def synonym_candidates(vocab: dict[str, int], synonyms: dict[str, frozenset[str]], m: int = 8) -> Tensor:
    """``[V, m]`` candidate ids: for each whole-word token, up to ``m`` of its synonyms that are whole
    tokens too (sorted, so the table is reproducible), padded with the token's own id."""
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    v = max(vocab.values()) + 1
    table = torch.arange(v).unsqueeze(1).repeat(1, m)
    for word, i in vocab.items():
        if i < _SPECIAL or word.startswith("##"):
            continue
        ids = sorted(vocab[s] for s in synonyms.get(word.lower(), ()) if s in vocab and vocab[s] >= _SPECIAL)
        if ids:
            table[i, : min(m, len(ids))] = torch.tensor(ids[:m])
    return table


@register("attack", "word-substitution")
class WordSubstitution(Attack):
    """Greedy nearest-token substitution.

    Args:
        k: the most tokens substituted per sentence (the ``l0`` budget).
        candidates: nearest tokens tried per position.
        random: substitute ``k`` random positions by a random one of their candidates (the control).
        neighbours: a ``[V, m]`` candidate table (e.g. :func:`synonym_candidates`) instead of the
            ``candidates`` nearest tokens of the codec's embedding.
        seed: the attack's seed (random control, tie-breaking draws).
        score: ``score(logits [N, T, V], sent ids [N, T]) -> [N]`` to maximise per trial, instead of the
            token cross-entropy (e.g. :func:`semguard.attacks.sentence.similarity_score`).
    """

    name = "word-substitution"
    knowledge = "white-box"
    surfaces = ("input",)

    def __init__(self, *, k: int = 2, candidates: int = 8, random: bool = False, seed: int = 0,
                 objective: str | None = None, neighbours: Tensor | None = None,
                 score: Callable[[Tensor, Tensor], Tensor] | None = None) -> None:
        if not isinstance(k, int) or k < 0:
            raise ValueError(f"k (substituted tokens) must be a whole number >= 0, got {k!r}")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        if objective not in (None, "semantic"):
            raise ValueError(f"objective: word substitution attacks the semantic objective, got {objective!r}")
        self.surface, self.norm, self.budget = "input", "l0", float(k)
        self.objective, self.targeted, self.recon_loss = "semantic", False, "psnr"
        self.task_loss = "ce"
        self.attacker_fading, self.seed = "none", int(seed)
        if neighbours is not None and (neighbours.dim() != 2 or neighbours.dtype != torch.long):
            raise ValueError(f"neighbours must be a LongTensor [V, m], got {neighbours.dtype} {tuple(neighbours.shape)}")
        self.k, self.candidates, self.random = k, int(candidates), bool(random)
        self.neighbours = neighbours
        if score is not None and not callable(score):
            raise TypeError(f"score must be a callable (logits, sent ids) -> [N], got {type(score).__name__}")
        self.score = score
        if random:
            self.knowledge = "none"

    def extra_config(self) -> dict[str, Any]:
        return {"k": self.k, "candidates": self.candidates if self.neighbours is None else int(self.neighbours.shape[1]),
                "random": self.random, "neighbours": "nearest-embedding" if self.neighbours is None else "table",
                "score": "token-ce" if self.score is None else getattr(self.score, "name", "custom")}

    def __call__(self, link: Link, source: Tensor, snr_db: Tensor | float, *, labels: Tensor | None = None,
                 target: Tensor | None = None, generator: torch.Generator | None = None) -> AttackResult:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        link.codec.check_source(source)
        check_objective("semantic", link.codec)
        if target is not None:
            raise ValueError("target: word substitution here is untargeted")
        gen = check_generator(generator, source) or torch.Generator(device=source.device).manual_seed(self.seed)
        rng = attacker_generator(self.seed, source.device)
        snr = as_snr_tensor(snr_db, source.shape[0], source.device)
        if self.neighbours is not None:
            near = self.neighbours.to(source.device)
            if int(source.max()) >= near.shape[0]:
                raise ValueError(f"neighbours: the table covers {near.shape[0]} token ids, the source has id {int(source.max())}")
        else:
            embed = getattr(link.codec, "embed", None)
            if embed is None:
                raise ValueError(f"codec: {type(link.codec).__name__} has no token embedding to take neighbours from")
            near = nearest_tokens(embed.weight, self.candidates).to(source.device)

        with frozen(link), torch.no_grad():
            adv = source.clone()
            changed = torch.zeros_like(source, dtype=torch.bool)
            real = source >= _SPECIAL
            for _ in range(self.k):
                if self.random:
                    adv, changed = self._random_round(adv, changed, real, near, rng)
                else:
                    adv, changed = self._greedy_round(link, source, adv, changed, real, near, snr, rng)
            out = link(adv, snr, generator=gen)
        measured = (adv != source).sum(dim=1).float()
        return AttackResult(out["output"], adv, ThreatModel("input", "l0", self.budget, self.knowledge, "semantic"),
                            measured, out, self.config())

    def _random_round(self, adv: Tensor, changed: Tensor, real: Tensor, near: Tensor,
                      rng: torch.Generator) -> tuple[Tensor, Tensor]:
        free = real & ~changed & (near[adv] != adv.unsqueeze(-1)).any(-1)
        for b in range(adv.shape[0]):
            pos = free[b].nonzero().flatten()
            if pos.numel() == 0:
                continue
            p = pos[torch.randint(0, pos.numel(), (1,), generator=rng, device=rng.device)].item()
            opts = near[adv[b, p]][near[adv[b, p]] != adv[b, p]]
            c = torch.randint(0, opts.numel(), (1,), generator=rng, device=rng.device).item()
            adv[b, p] = opts[c]
            changed[b, p] = True
        return adv, changed

    def _greedy_round(self, link: Link, source: Tensor, adv: Tensor, changed: Tensor, real: Tensor,
                      near: Tensor, snr: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        for b in range(adv.shape[0]):
            pos = (real[b] & ~changed[b]).nonzero().flatten()
            if pos.numel() == 0:
                continue
            cand = near[adv[b, pos]]                                    # [P, m]
            trials = adv[b].repeat(pos.numel() * cand.shape[1], 1)      # [P*m, T]
            rows = torch.arange(trials.shape[0])
            trials[rows, pos.repeat_interleave(cand.shape[1])] = cand.flatten()
            ref = source[b].expand_as(trials)
            out = link(trials, snr[b].expand(trials.shape[0]), generator=rng)  # its own channel draws
            loss = (attack_loss("semantic", out["output"], ref) if self.score is None
                    else self.score(out["output"], ref).float())
            same = cand.flatten() == adv[b, pos].repeat_interleave(cand.shape[1])  # padding: no change
            if bool(same.all()):
                continue
            loss = loss.masked_fill(same, float("-inf"))
            best = int(loss.argmax())
            adv[b] = trials[best]
            changed[b, pos[best // cand.shape[1]]] = True
        return adv, changed
