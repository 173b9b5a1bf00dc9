"""Semantic noise (Kang et al.; Hu et al.): targeted attacks that change what Bob receives while the
budget stays small -- the decoded image resembles a target photo; Bob reads a chosen other sentence
-- and input attacks on the image codecs (linf eps grid, reconstruction objective), JSON out.

    PYTHONPATH=src python bench/attacks_semantic.py --images 2 --sentences 16 --steps 40 --threads 1 \\
        --out bench/results/attacks_semantic.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.channels import AWGN
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.data.text import load_shipped
from semguard.metrics.image import psnr
from semguard.metrics.text import bleu
from semguard.link import Link
from semguard.registry import build


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--sentences", type=int, default=16)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--codecs", nargs="+", default=["softcast-cbr1_6", "adjscc-cbr1_6"])
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/attacks_semantic.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = lambda: torch.Generator().manual_seed(0)
    rows = []
    t0 = time.perf_counter()
    x = shipped_photos()[: a.images]
    target = shipped_photos()[a.images: 2 * a.images]
    for name in a.codecs:
        link = Link(pretrained(name), AWGN())
        with torch.no_grad():
            clean = link(x, a.snr_db, generator=g())["output"]
        base = {"codec": name, "clean_psnr": psnr(clean, x).mean().item(),
                "clean_psnr_to_target": psnr(clean, target).mean().item()}
        for b in (-10.0, -5.0, 0.0):
            r = build("attack", "pgd", surface="channel", psr_db=b, steps=a.steps, targeted=True)(
                link, x, a.snr_db, target=target, generator=g())
            rows.append({**base, "attack": "pgd-targeted-image", "psr_db": b,
                         "psnr_to_target": psnr(r.output, target).mean().item(),
                         "psnr_to_source": psnr(r.output, x).mean().item(), "threat_model": r.threat_model.to_dict()})
            print(f"{name} targeted image psr {b:g}: PSNR to target {rows[-1]['psnr_to_target']:.2f} "
                  f"(clean {base['clean_psnr_to_target']:.2f}), to source {rows[-1]['psnr_to_source']:.2f}", flush=True)
        for eps in (0.01, 0.03, 0.1):
            for atk in ("gaussian", "pgd"):
                kw = {"steps": a.steps // 2} if atk == "pgd" else {}
                r = build("attack", atk, surface="input", eps=eps, **kw)(link, x, a.snr_db, generator=g())
                rows.append({**base, "attack": f"input-{atk}", "eps": eps, "psnr": psnr(r.output, x).mean().item(),
                             "threat_model": r.threat_model.to_dict()})
                print(f"{name} input {atk} linf eps {eps:g}: PSNR {rows[-1]['psnr']:.2f} (clean {base['clean_psnr']:.2f})",
                      flush=True)
    codec = build("codec", "deepsc", pretrained=True).eval()
    pool = [s for s in load_shipped() if codec.tokenize([s]).shape[1] == 10][: a.sentences]
    tok = codec.tokenize(pool)
    tgt = tok.roll(1, dims=0)
    lengths = codec.lengths(tok)
    tgt_text = codec.tokenizer.decode(tgt, lengths)
    link = Link(codec, AWGN())
    for b in (-5.0, 0.0, 5.0):
        r = build("attack", "pgd", surface="channel", psr_db=b, steps=a.steps, targeted=True)(
            link, tok, a.snr_db, target=tgt, generator=g())
        got = codec.tokenizer.decode(r.output.argmax(-1), lengths)
        rows.append({"codec": "deepsc", "attack": "pgd-targeted-sentence", "psr_db": b,
                     "exact_match": sum(h == t for h, t in zip(got, tgt_text)) / len(got),
                     "bleu1_to_target": bleu(got, tgt_text, 1).mean().item(),
                     "bleu4_to_target": bleu(got, tgt_text, 4).mean().item(),
                     "bleu1_to_source": bleu(got, pool, 1).mean().item(), "threat_model": r.threat_model.to_dict(),
                     "example": [pool[0], tgt_text[0], got[0]]})
        print(f"deepsc targeted sentence psr {b:g}: exact {rows[-1]['exact_match']:.3f} BLEU-1 to target "
              f"{rows[-1]['bleu1_to_target']:.3f} to source {rows[-1]['bleu1_to_source']:.3f}", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "attacks_semantic", "config": vars(a), "seconds": time.perf_counter() - t0,
                               "records": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
