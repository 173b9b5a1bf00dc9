"""Emergency-network experiments: critical-content fidelity against SNR, priority against uniform.

Images: :class:`~semguard.network.priority.PrioritySoftCast` on the shipped photos, the region of
interest the central quarter (or a saliency map); metric the region's PSNR.  Text: DeepSC with
the critical words' tokens given more power (same channel uses and energy) or repeated; metric
the exact recall of critical words (all of a word's pieces decoded right).  Both optionally with
a partial-band jammer.  ``gain_at`` reads off the SNR each scheme needs to reach a fidelity
threshold (linear interpolation on the SNR grid) and their difference in dB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.network.priority import (
    PrioritySoftCast,
    jammer,
    region_psnr,
    roi_weights,
    saliency_weights,
)
from semguard.network.priority_text import SCHEMES, allocate_power, critical_token_mask
from semguard.registry import build

__all__ = ["gain_at", "image_sweep", "snr_to_reach", "text_sweep"]


def snr_to_reach(snrs: Sequence[float], values: Sequence[float], threshold: float) -> float | None:
    """Lowest SNR (linear interpolation) at which ``values`` (increasing in SNR) reach ``threshold``."""
    pts = list(zip(snrs, values))
    if pts[0][1] >= threshold:
        return float(pts[0][0])
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if v0 < threshold <= v1:
            return float(s0 + (threshold - v0) * (s1 - s0) / (v1 - v0))
    return None


def gain_at(rows: list[dict], metric: str, threshold: float, *, a: str = "priority", b: str = "uniform",
            key: str = "scheme") -> dict:
    """SNR each of schemes ``a`` and ``b`` needs for ``metric >= threshold``, and ``b``'s minus ``a``'s."""
    out = {}
    for name in (a, b):
        sel = sorted((r["snr_db"], r[metric]) for r in rows if r[key] == name)
        out[name] = snr_to_reach([s for s, _ in sel], [v for _, v in sel], threshold)
    out["gain_db"] = None if None in (out[a], out[b]) else out[b] - out[a]
    out["threshold"] = threshold
    return out


@torch.no_grad()
def image_sweep(images: Tensor, snrs: Sequence[float], *, channel: str = "awgn", weight: float = 16.0,
                roi: tuple[int, int, int, int] | None = None, saliency: bool = False, jam_psr_db: float | None = None,
                jam_targeted: bool = False, seed: int = 0, codec: SemanticCodec | None = None) -> list[dict]:
    """Region PSNR and background PSNR per SNR for uniform and priority allocation."""
    from semguard.codecs.zoo import pretrained
    ps = PrioritySoftCast(codec or pretrained("softcast-cbr1_6"))
    h, w = images.shape[-2:]
    roi = roi or (h // 4, w // 4, h // 2, w // 2)
    wroi, mask = roi_weights((h, w), roi, block=ps.codec.block, weight=weight)
    ch = build("channel", channel)
    rows = []
    for snr in snrs:
        for scheme in ("uniform", "priority"):
            g = torch.Generator().manual_seed(seed)
            psnr_in, psnr_out = [], []
            for i in range(images.shape[0]):
                x = images[i:i + 1]
                wt = None if scheme == "uniform" else (saliency_weights(x[0], block=ps.codec.block) if saliency else wroi)
                s, scale = ps.encode(x, wt)
                st = ch.sample_state(1, s.shape[1], snr, generator=g)
                interf = None
                if jam_psr_db is not None:
                    interf = st.h * jammer(tuple(s.shape), s.abs().square(), psr_db=jam_psr_db, targeted=jam_targeted,
                                           generator=g)
                y = ch.equalize(ch.apply(s, st, generator=g, interference=interf), st)
                xh = ps.decode(y, st, scale, (h, w), wt)
                psnr_in.append(float(region_psnr(xh, x, mask)))
                psnr_out.append(float(region_psnr(xh, x, ~mask)))
            rows.append({"snr_db": snr, "scheme": scheme, "roi_psnr": sum(psnr_in) / len(psnr_in),
                         "background_psnr": sum(psnr_out) / len(psnr_out)})
    return rows


@torch.no_grad()
def text_sweep(sentences: Sequence[str], snrs: Sequence[float], *, boost_db: float = 1.0, repeat: int = 2,
               channel: str = "awgn", reference: Sequence[str] | None = None, jam_psr_db: float | None = None,
               seed: int = 0, codec: SemanticCodec | None = None) -> list[dict]:
    """Critical-word exact recall and other-word accuracy per SNR for each of :data:`SCHEMES`
    (``repeat-energy``: ``repeat`` with every symbol scaled down so that each sentence spends
    uniform's energy; the receiver scales back, so only the noise is larger)."""
    m = codec or build("codec", "deepsc", pretrained=True)
    m.eval()
    counts = Counter(" ".join(reference or sentences).split())
    crit, spans = critical_token_mask(m.tokenizer, sentences, counts)
    tokens = m.tokenizer.encode(list(sentences), max_tokens=m.max_tokens)
    lengths = m.lengths(tokens)
    S = m.S
    ch = build("channel", channel)
    rows = []
    for snr in snrs:
        for scheme in SCHEMES:
            g = torch.Generator().manual_seed(seed)
            x = m.encode(tokens, snr)                                         # [B, S*T]
            B, T = tokens.shape
            if scheme == "power":
                amp = allocate_power(crit, lengths, boost_db).sqrt().repeat_interleave(S, 1)
            else:
                amp = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float().repeat_interleave(S, 1)
            if scheme == "repeat-energy":      # every symbol scaled so the sentence's energy is uniform's
                lc = (crit & (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1))).sum(1, keepdim=True)
                amp = amp * (lengths.unsqueeze(1) / (lengths.unsqueeze(1) + (repeat - 1) * lc)).float().sqrt()
            copies = repeat if scheme.startswith("repeat") else 1
            acc = torch.zeros_like(x)
            for _ in range(copies):
                tx = x * amp
                st = ch.sample_state(B, tx.shape[1], snr, generator=g)
                interf = None
                if jam_psr_db is not None:
                    interf = st.h * jammer(tuple(tx.shape), tx.abs().square(), psr_db=jam_psr_db, generator=g)
                y = ch.equalize(ch.apply(tx, st, generator=g, interference=interf), st)
                y = y / amp.clamp_min(1e-6) * (amp > 0)
                # non-critical tokens are sent once; only critical ones accumulate copies
                acc = acc + (y if _ == 0 else y * crit.repeat_interleave(S, 1))
            n_copies = 1 + (copies - 1) * crit.repeat_interleave(S, 1).float()
            pred = m.decode(acc / n_copies, None, lengths=lengths).argmax(-1)
            ok = pred == tokens
            cw = ow = nc = no = 0
            for b, sp in enumerate(spans):
                for s0, s1, c in sp:
                    good = bool(ok[b, s0:s1].all())
                    if c:
                        cw, nc = cw + good, nc + 1
                    else:
                        ow, no = ow + good, no + 1
            uses = int((S * lengths).sum()) + (copies - 1) * S * int(crit.sum())
            rows.append({"snr_db": snr, "scheme": scheme, "critical_recall": cw / max(nc, 1),
                         "other_word_accuracy": ow / max(no, 1), "critical_words": nc, "channel_uses": uses})
    return rows
