"""``semguard run``: the main job on the embedded defaults (see semguard.evaluation.run)."""

from __future__ import annotations

import argparse

from semguard.cli.common import add_device_seed, check_out_dir


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job: shipped codecs vs separation baselines over the channels")
    p.add_argument("--out", default="semguard-out", help="output folder (default: semguard-out)")
    p.add_argument("--quick", action="store_true",
                   help="2 photos, 1 fading draw, 500 task images, 100 sentences, SNR 0/10/20 dB")
    p.add_argument("--fresh", action="store_true", help="ignore finished work in --out (default: resume)")
    add_device_seed(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out)  # before anything is imported or measured
    import time
    from dataclasses import asdict

    import torch

    from semguard import __version__
    from semguard.evaluation.report import format_gaps, format_table, plot_fidelity
    from semguard.evaluation.run import QUICK, RunConfig, run_gaps, run_main_job
    from semguard.utils import resolve_device, seed_everything

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    seed_everything(args.seed)
    base = QUICK if args.quick else RunConfig()
    cfg = RunConfig(**{**asdict(base), "seed": args.seed})
    out.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        (out / "records.jsonl").unlink(missing_ok=True)
    t0 = time.monotonic()
    print(f"semguard {__version__} main job -> {out}/ ({'quick' if args.quick else 'full'}, device {device})")
    store = run_main_job(out, cfg, device=device, on_progress=lambda m: print(f"  measuring {m}", flush=True))
    # seconds: the measuring time of every result reported, summed over the calls that measured them
    # (a resumed run keeps its first calls' time); session_seconds: this call only
    meta = {"semguard": __version__, "config": asdict(cfg), "device": str(device),
            "seconds": store.seconds(), "session_seconds": round(time.monotonic() - t0, 1)}
    gap_tables = run_gaps(store.current(), cfg)
    store.write_json(out / "results.json", meta, gaps=[
        {"comparison": title, "channel": ch, "snr_db": snr, "metric": "psnr", **g.to_json()}
        for title, rows in gap_tables.items() for ch, row in rows.items() for snr, g in row.items()])
    plot_fidelity(store.current(), out / "fidelity.png",
                  title=f"{cfg.image_codec} vs separation baselines, shipped photos 256x256")
    formats = {"psnr": "{:6.2f}", "psnr_expected": "{:6.2f}", "file_bytes": "{:6.0f}"}
    for metric in ("psnr", "psnr_expected", "ms_ssim", "file_bytes", "accuracy", "bleu1", "similarity"):
        table = format_table(store.current(), metric, formats.get(metric, "{:6.3f}"))
        if table:
            print("\n" + table)
    for title, rows in gap_tables.items():
        print("\n" + format_gaps(rows, f"{title}, mean and 95% interval over the images"))
    measured = "unknown (older records)" if meta["seconds"] is None else f"{meta['seconds']} s"
    print(f"\nwrote {out / 'results.json'} and {out / 'fidelity.png'}: this call {meta['session_seconds']} s, "
          f"measuring time of the results {measured}")
    return 0
