"""Train the shipped DeepSC weights on WordNet example sentences (training split only).

    python -m semguard.codecs._text_train --minutes 38 --out /tmp/deepsc_run

Wall-clock budget with a cosine learning rate over the budget; SNR uniform in ``[snr_lo, snr_hi]``
dB per sentence; each batch goes through AWGN or (with ``p_rayleigh``) Rayleigh block fading,
the foundation's channels.  Validation (the hash-split validation part, never the test split)
is logged as token accuracy at 9 dB AWGN; checkpoints are written every ``--ckpt-minutes``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as Fn

from semguard.channels import AWGN, Rayleigh
from semguard.codecs._text_tokenizer import PAD_ID, train_wordpiece
from semguard.codecs.deepsc import DeepSC
from semguard.data.text import load_wordnet_examples, split_sentences
from semguard.utils import seed_everything

log = logging.getLogger("semguard.deepsc.train")


def token_batches(ids: torch.Tensor, tokens_per_batch: int, g: torch.Generator) -> list[torch.Tensor]:
    """Length-bucketed batches of row indices (shuffled), about ``tokens_per_batch`` tokens each."""
    lens = (ids != PAD_ID).sum(1)
    perm = torch.randperm(len(ids), generator=g)
    order = perm[torch.argsort(lens[perm], stable=True)]
    batches, start = [], 0
    while start < len(order):
        L = int(lens[order[min(start + 1, len(order) - 1)]])
        size = max(8, tokens_per_batch // max(L, 1))
        batches.append(order[start:start + size])
        start += size
    return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def masked_ce(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    mask = tokens != PAD_ID
    return Fn.cross_entropy(logits[mask], tokens[mask])


@torch.no_grad()
def token_accuracy(model: DeepSC, ids: torch.Tensor, snr_db: float, g: torch.Generator) -> float:
    model.eval()
    out = model(ids, AWGN(), snr_db, generator=g)
    mask = ids != PAD_ID
    acc = (out["logits"].argmax(-1)[mask] == ids[mask]).float().mean().item()
    model.train()
    return acc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=38.0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--tokens-per-batch", type=int, default=640)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--snr-lo", type=float, default=0.0)
    p.add_argument("--snr-hi", type=float, default=18.0)
    p.add_argument("--p-rayleigh", type=float, default=0.25)
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(a.threads)
    g = seed_everything(a.seed)
    split = split_sentences(load_wordnet_examples())
    tok = train_wordpiece(split.train, a.vocab)
    model = DeepSC(vocab_size=tok.vocab_size, tokenizer=tok)
    train_ids = tok.encode(split.train, max_tokens=model.max_tokens, on_overflow="truncate")
    val_ids = tok.encode(split.val, max_tokens=model.max_tokens, on_overflow="truncate")
    log.info("train %d, val %d sentences; %d parameters", len(split.train), len(split.val),
             sum(q.numel() for q in model.parameters()))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    channels = [AWGN(), Rayleigh()]
    budget, t0, step, next_ckpt, warmup = a.minutes * 60, time.time(), 0, a.ckpt_minutes * 60, 300
    history = []
    model.train()
    while True:
        for idx in token_batches(train_ids, a.tokens_per_batch, g):
            el = time.time() - t0
            if el >= budget:
                break
            lr = a.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * el / budget))
            for group in opt.param_groups:
                group["lr"] = lr
            batch = train_ids[idx]
            batch = batch[:, :int((batch != PAD_ID).sum(1).max())]
            snr = a.snr_lo + (a.snr_hi - a.snr_lo) * torch.rand(len(batch), generator=g)
            ch = channels[1] if torch.rand(1, generator=g).item() < a.p_rayleigh else channels[0]
            loss = masked_ce(model(batch, ch, snr, generator=g)["logits"], batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 100 == 0:
                log.info("step %d  %.1f min  lr %.2e  loss %.3f", step, el / 60, lr, loss.item())
            if el >= next_ckpt:
                next_ckpt += a.ckpt_minutes * 60
                rec = {"step": step, "minutes": el / 60,
                       **{f"val_acc_{s}dB": token_accuracy(model, val_ids, s, g) for s in (0, 9)}}
                history.append(rec)
                log.info("checkpoint %s", rec)
                model.save_pretrained(a.out)
        else:
            continue
        break
    model.eval()
    rec = {"step": step, "minutes": (time.time() - t0) / 60,
           **{f"val_acc_{s}dB": token_accuracy(model, val_ids, s, g) for s in (0, 9)}}
    history.append(rec)
    digests = model.save_pretrained(a.out)
    (a.out / "train_log.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()},
                                                      "history": history, "sha256": digests}, indent=1))
    log.info("done %s sha256 %s", rec, digests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
