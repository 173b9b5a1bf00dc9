"""``semguard run [SCENARIO]``: the main job, a scenario file's grid (default: the bundled
``default`` scenario; see semguard.evaluation.scenario), with its envelope and HTML report."""

from __future__ import annotations

import argparse

from semguard.cli.common import add_device_seed, check_out_dir, int_at_least


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job: shipped codecs vs separation baselines over the channels")
    p.add_argument("scenario", nargs="?", default="default",
                   help="a bundled scenario name or a scenario .toml file (default: default)")
    p.add_argument("--out", default="semguard-out", help="output folder (default: semguard-out)")
    p.add_argument("--quick", action="store_true",
                   help="apply the scenario's [quick] section (default: SNR 0/10 dB, 2 photos, 1 fading draw, one "
                        "reference codec, 500 task images, 50 sentences, shorter attacks)")
    p.add_argument("--fresh", action="store_true", help="ignore finished work in --out (default: resume)")
    p.add_argument("--executor", choices=("serial", "process", "ray"), default="process",
                   help="where the cells run: here, in --workers local processes, or on Ray "
                        "(RAY_ADDRESS, else a local instance that is stopped afterwards) (default: process)")
    p.add_argument("--workers", type=int_at_least(1), default=2, help="processes or Ray CPUs (default: 2)")
    p.add_argument("--list-scenarios", action="store_true", help="list the bundled scenarios and exit")
    add_device_seed(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from semguard.evaluation.scenario import list_scenarios, load_scenario

    if args.list_scenarios:
        for name, desc in list_scenarios().items():
            print(f"{name}: {desc}")
        return 0
    scenario = load_scenario(args.scenario)          # validated before anything is measured
    out = check_out_dir(args.out)
    import torch

    from semguard import __version__
    from semguard.evaluation.job import run_scenario
    from semguard.evaluation.report import format_gaps, format_table, plot_fidelity
    from semguard.utils import resolve_device, seed_everything

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type != "cpu":
        raise ValueError(f"--device {args.device}: the main job measures on the CPU (use --device in train/attack)")
    seed_everything(args.seed)
    if args.quick:
        scenario = scenario.quick()
    scenario = replace(scenario, run=replace(scenario.run, seed=args.seed))
    out.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        (out / "records.jsonl").unlink(missing_ok=True)
    print(f"semguard {__version__} run {scenario.name} -> {out}/ ({'quick' if args.quick else 'full'}, "
          f"{args.executor} x{args.workers})")
    res = run_scenario(scenario, out, executor=args.executor, workers=args.workers,
                       on_progress=lambda m: print(f"  {m}", flush=True))
    records = res["store"].current()
    plot_fidelity(records, out / "fidelity.png",
                  title=f"{scenario.run.image_codec} vs separation baselines, shipped photos 256x256")
    formats = {"psnr": "{:6.2f}", "psnr_expected": "{:6.2f}", "file_bytes": "{:6.0f}", "latency_ms": "{:6.0f}",
               "energy_mj": "{:6.2f}", "psnr_bob": "{:6.2f}", "psnr_eve": "{:6.2f}", "robust_psnr": "{:6.2f}"}
    for metric in ("psnr", "psnr_expected", "ms_ssim", "file_bytes", "latency_ms", "energy_mj", "robust_psnr",
                   "robust_ms_ssim", "psnr_bob", "psnr_eve", "accuracy", "bleu1", "similarity", "robust_bleu1",
                   "robust_similarity"):
        table = format_table(records, metric, formats.get(metric, "{:6.3f}"))
        if table:
            print("\n" + table)
    for title, rows in res["gaps"].items():
        print("\n" + format_gaps(rows, f"{title}, mean and 95% interval over the images"))
    if res["region"]:
        print("\noperating region (" + "; ".join(c.describe() for c in scenario.constraints) + "):")
        for r in res["region"]:
            print(f"  {r.system:>22}  {'meets every constraint' if r.ok else 'fails: ' + r.reason}")
    print("\nPareto front (PSNR, latency, energy estimate) at "
          + ", ".join(f"{k}: {' / '.join(v) or '-'}" for k, v in res["envelope"].items() if "@10" in k))
    meta = res["meta"]
    print(f"\nwrote {res['paths']['html']}, {res['paths']['json']}, {res['paths']['csv']} and {out / 'fidelity.png'}: "
          f"{meta['cells_run']} of {meta['cells']} cells measured in this call ({meta['session_seconds']} s wall; "
          f"measuring time of all results {meta['seconds']} s)")
    return 0
