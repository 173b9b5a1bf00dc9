"""Poisoning study: detection rate and false alarms of provenance + validation gate.

From a trained codec (the head of a knowledge base), build benign updates (further fine-tuning,
vocabulary appends, small codebook drift) and poisoned ones (unauthorised publisher; stolen key
pushing noise-degraded, layer-corrupted, colour-inverting or backdoored weights; swapped
look-alike vocabulary/codebook entries), publish each against a copy of the head with the gate
on, and count rejections.  The delta screen is calibrated on separate benign fine-tunes.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from semguard.evaluation.studies.desync import link_psnr, train_steps, training_images
from semguard.knowledge.codec_io import codec_entries, load_codec, state_bytes
from semguard.knowledge.keys import generate_key
from semguard.knowledge.poison import DeltaScreen, delta_features, make_gate
from semguard.knowledge.records import KnowledgeError
from semguard.knowledge.store import KnowledgeBase

__all__ = ["Update", "PoisonReport", "run_poison_study", "canary_fidelity"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Update:
    """One candidate update: label, whether poisoned, entries, and whether signed by a stranger."""

    label: str
    poisoned: bool
    put: dict[str, bytes]
    stranger: bool = False


@dataclass(frozen=True)
class PoisonReport:
    """Per-update outcome (label -> (poisoned, rejected, reason)) and the two rates."""

    outcomes: dict[str, tuple[bool, bool, str]]
    detection_rate: float
    false_alarm_rate: float
    n_poisoned: int
    n_benign: int


def canary_fidelity(images: Tensor, *, snr_db: float = 10.0, seed: int = 0) -> Callable[[nn.Module], float]:
    """The poisoning gate's canary score: mean PSNR (dB) of a codec on held-out ``images`` over a
    fixed-seed AWGN link (:func:`semguard.knowledge.poison.make_gate`'s ``canary``)."""
    return lambda codec: link_psnr(codec, codec, images, snr_db=snr_db, seed=seed)


def _trigger(x: Tensor) -> Tensor:
    x = x.clone()
    x[:, :, :6, :6] = torch.tensor([1.0, 0.0, 1.0]).view(1, 3, 1, 1)  # magenta corner patch
    return x


def _backdoor_target(x: Tensor) -> tuple[Tensor, Tensor]:
    half = x.shape[0] // 2
    inp = torch.cat([x[:half], _trigger(x[half:])])
    want = torch.cat([x[:half], torch.zeros_like(x[half:])])  # triggered images decode to black
    return inp, want


def _candidates(codec: nn.Module, name: str, vocab: dict, book: Tensor, seed: int) -> list[Update]:
    imgs, ups = training_images(), []

    def tuned(steps: int, s: int, **kw) -> nn.Module:
        return train_steps(copy.deepcopy(codec), imgs, steps, seed=s, **kw)

    def noisy(scale: float) -> nn.Module:
        c, g = copy.deepcopy(codec), torch.Generator().manual_seed(seed + int(scale * 1000))
        with torch.no_grad():
            for p in c.parameters():
                p.add_(scale * p.std().nan_to_num(0.0) * torch.randn(p.shape, generator=g))
        return c

    for i, steps in enumerate((25, 50, 100, 25, 50, 100)):
        ups.append(Update(f"benign finetune {steps} steps #{i}", False,
                          codec_entries(name, tuned(steps, seed + 100 + i))))
    ups.append(Update("benign vocab append", False,
                      {"vocab": json.dumps({**vocab, "new_token": "new meaning"}).encode()}))
    g = torch.Generator().manual_seed(seed)
    ups.append(Update("benign codebook drift", False,
                      {"codebook": state_bytes(_book(book + 0.01 * torch.randn(book.shape, generator=g)))}))
    ups.append(Update("unauthorised publisher (finetune)", True, codec_entries(name, tuned(50, seed + 7)), True))
    ups.append(Update("unauthorised publisher (vocab)", True,
                      {"vocab": json.dumps({**vocab, "x": "y"}).encode()}, True))
    for scale in (0.05, 0.1, 0.3, 1.0):
        ups.append(Update(f"stolen key: weight noise x{scale}", True, codec_entries(name, noisy(scale))))
    c = copy.deepcopy(codec)
    with torch.no_grad():
        c.dec_out.weight.neg_()
    ups.append(Update("stolen key: decoder output layer sign-flipped", True, codec_entries(name, c)))
    ups.append(Update("stolen key: colour-inverting finetune", True, codec_entries(
        name, tuned(100, seed + 8, target=lambda x: (x, 1.0 - x)))))
    for i in range(2):
        ups.append(Update(f"stolen key: backdoor finetune #{i}", True, codec_entries(
            name, tuned(100, seed + 20 + i, target=_backdoor_target))))
    keys = sorted(vocab)
    for i, (a, b) in enumerate([(keys[0], keys[1]), (keys[2], keys[3])]):
        ups.append(Update(f"stolen key: vocab swap #{i}", True,
                          {"vocab": json.dumps({**vocab, a: vocab[b], b: vocab[a]}).encode()}))
    for i, (a, b) in enumerate([(0, 1), (2, 3)]):
        sw = book.clone()
        sw[[a, b]] = sw[[b, a]]
        ups.append(Update(f"stolen key: codebook swap #{i}", True, {"codebook": state_bytes(_book(sw))}))
    return ups


class _book(nn.Module):
    def __init__(self, t: Tensor) -> None:
        super().__init__()
        self.codebook = nn.Parameter(t.clone(), requires_grad=False)


def run_poison_study(kb_path: str, name: str, factory: Callable[..., nn.Module], canary: Tensor, *,
                     key, workdir: str, max_drop_db: float = 1.0, z_max: float = 4.0,
                     seed: int = 0) -> PoisonReport:
    """Evaluate the gate on every candidate; each is published on a fresh copy of ``kb_path``."""
    from pathlib import Path
    base = KnowledgeBase(kb_path)
    codec = load_codec(base, name, factory)
    calib = [delta_features(codec.state_dict(), train_steps(copy.deepcopy(codec), training_images(), s,
                                                            seed=seed + 50 + i).state_dict())
             for i, s in enumerate((25, 50, 100, 25, 50, 100))]
    screen = DeltaScreen.fit(np.stack(calib), z_max=z_max)
    g = torch.Generator().manual_seed(seed)
    # look-alike entries: vocabulary meanings and codebook rows in near-identical pairs
    vocab = {f"tok{i}": f"meaning {i}" for i in range(8)}
    book = torch.randn(16, 8, generator=g).repeat_interleave(2, 0)[:16] + 0.05 * torch.randn(16, 8, generator=g)
    base.publish(key, {"vocab": json.dumps(vocab).encode(), "codebook": state_bytes(_book(book))})
    gate = make_gate(name, factory, canary_fidelity(canary), max_drop_db=max_drop_db, screen=screen,
                     vocabularies=("vocab",), codebooks=("codebook",))
    stranger, outcomes = generate_key(), {}
    for i, up in enumerate(_candidates(codec, name, vocab, book, seed)):
        path = str(Path(workdir) / f"cand{i}.db")
        base.conn.execute(f"VACUUM INTO '{path}'")
        kb = KnowledgeBase(path)
        try:
            kb.publish(stranger if up.stranger else key, up.put, gate=gate)
            outcomes[up.label] = (up.poisoned, False, "")
        except KnowledgeError as exc:
            outcomes[up.label] = (up.poisoned, True, str(exc))
        kb.close()
        Path(path).unlink()
        log.info("%s -> %s", up.label, outcomes[up.label][1:])
    pois = [o for o in outcomes.values() if o[0]]
    ben = [o for o in outcomes.values() if not o[0]]
    return PoisonReport(outcomes, sum(o[1] for o in pois) / len(pois), sum(o[1] for o in ben) / len(ben),
                        len(pois), len(ben))
