"""The fewer-symbol DeepSC victim (zoo ``deepsc-magmaw``, docs/attacks.md session 15): equal-power
random jamming at PSR -16 dB over AWGN at 10 dB is AWGN at 9.03 dB, and it costs this victim tokens
where it costs the shipped DeepSC none."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.channels import AWGN
from semguard.codecs import zoo
from semguard.data.text import load_shipped
from semguard.link import Link
from semguard.registry import build

torch.set_num_threads(1)


def _blocks(codec) -> list[torch.Tensor]:
    """The shipped sentences of 6 to 10 tokens, one unpadded block per length (the PSR is per block, so
    padding would dilute the jamming on the real slots)."""
    by_len: dict[int, list[str]] = {}
    for s in load_shipped():
        by_len.setdefault(int(codec.tokenize([s], on_overflow="truncate").shape[1]), []).append(s)
    return [codec.tokenize(by_len[n]) for n in range(6, 11)]


def _token_accuracy(codec, blocks: list[torch.Tensor], snr_db: float, psr_db: float | None) -> float:
    link, g = Link(codec, AWGN()), torch.Generator().manual_seed(0)
    hits = total = 0
    for tok in blocks:
        with torch.no_grad():
            if psr_db is None:
                logits = link(tok, snr_db, generator=g)["output"]
            else:
                atk = build("attack", "gaussian", surface="symbols", psr_db=psr_db)
                logits = atk(link, tok, snr_db, generator=g).output
        hits, total = hits + int((logits.argmax(-1) == tok).sum()), total + tok.numel()
    return hits / total


@pytest.mark.slow
def test_random_jamming_at_minus_16_db_is_one_db_less_snr_and_hurts_only_the_fewer_symbol_victim() -> None:
    calib, shipped = zoo.pretrained("deepsc-magmaw"), zoo.pretrained("deepsc-wordnet")
    tok = _blocks(calib)  # 589 sentences, 4634 tokens
    eff = -10 * math.log10(10 ** -1.0 + 10 ** -1.6)  # noise 0.1 + jamming 0.1 * 10^-0.6 of the signal power
    assert eff == pytest.approx(9.03, abs=0.005)
    jammed, equivalent = _token_accuracy(calib, tok, 10.0, -16.0), _token_accuracy(calib, tok, eff, None)
    assert jammed == pytest.approx(equivalent, abs=0.02)  # 2.4 standard errors of the difference (seeded: deterministic)
    assert _token_accuracy(calib, tok, 10.0, None) - jammed > 0.01  # the 4-symbol victim loses tokens ...
    assert _token_accuracy(shipped, tok, 10.0, -16.0) > 0.995  # ... the shipped one does not
