"""Merge per-draw runs of ``bench/defenses_keyed.py --repeat R`` (one JSON per ``--seed``) into one file
with, per draw, the figures beside the ``repeat=1`` ones of session 15 (key-EOT PGD / APGD and Gaussian
from ``defenses_keyed_s15_draws.json``, the correlated jammer from ``defenses_keyed_s15_floor.json``, the
same key, knowledge and channel draw; a draw session 15 has no key-EOT run of takes them from a
``--repeat 1`` run of this session, ``--repeat1-runs``).  PSNR in dB per photo (astronaut, astronaut_face).

    PYTHONPATH=src python bench/defenses_keyed_repeat_summary.py RUN_seed0.json RUN_seed1.json ... \\
        [--repeat1-runs R1_seed0.json ...] --out bench/results/defenses_keyed_s20_repeat2.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ATTACKS = ("gaussian", "eot_strong_fading", "apgd_strong_fading", "correlated_fading")


def _r(v: float) -> float:
    return round(float(v), 3)


def _figures(res: dict, **given: list) -> dict:
    """One defenses_keyed.py run's clean and attacked figures (its one PSR); ``given`` figures (an attack
    the run lacks, taken from another file) are used instead of the run's."""
    clean, row = res["rows"][0], {**res["rows"][1], **given}
    return {"clean_mean_4_draws": clean["defended"], "clean_same_draw": clean["defended_same_draw"],
            **{k: row[k] for k in ATTACKS},
            **{k: row[k] for k in ("noise_cos_eot_strong_fading", "noise_cos_apgd_strong_fading") if k in row}}


def repeat1(seed: int, draws: dict, floor: dict, own: dict | None) -> dict:
    """Session 15's ``repeat=1`` figures of draw ``seed`` at -10 dB over Rayleigh, or (a draw it has no
    key-EOT runs of) those of this session's ``repeat=1`` run ``own``."""
    if f"seed{seed}" not in draws:
        if own is None:
            raise SystemExit(f"draw {seed}: session 15 has no key-EOT run of it; pass its --repeat1-runs file")
        out = _figures(own) | {"sources": {"all": "this session's defenses_keyed.py --repeat 1 run"}}
        return out | _strongest(out)
    [fl] = [d for r in floor["rayleigh"]["rows"] if r["psr_db"] == -10.0 for d in r["draws"] if d["seed"] == seed]
    out = _figures(draws[f"seed{seed}"], correlated_fading=fl["actual"]) | {
        "sources": {"correlated_fading": "defenses_keyed_s15_floor.json (actual)",
                    "others": "defenses_keyed_s15_draws.json"}}
    return out | _strongest(out)


def _strongest(fig: dict) -> dict:
    worst = [min(fig[k][i] for k in ATTACKS) for i in range(2)]
    which = [min(ATTACKS, key=lambda k: fig[k][i]) for i in range(2)]
    return {"strongest": worst, "strongest_is": which,
            "strongest_pct_of_same_draw": [_r(100 * w / c) for w, c in zip(worst, fig["clean_same_draw"])]}


def _mean(figs: list[dict]) -> dict:
    """The mean figures over draws, the strongest's mean over the mean same-draw clean PSNR, the worst draw."""
    mean = {k: [_r(sum(f[k][i] for f in figs) / len(figs)) for i in range(2)]
            for k in ("clean_same_draw", "strongest", *ATTACKS)}
    mean["strongest_pct_of_mean_same_draw_clean"] = [
        _r(100 * sum(f["strongest"][i] for f in figs) / sum(f["clean_same_draw"][i] for f in figs)) for i in range(2)]
    mean["worst_draw_pct"] = [min(f["strongest_pct_of_same_draw"][i] for f in figs) for i in range(2)]
    return mean


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="defenses_keyed.py outputs, one per --seed")
    p.add_argument("--channel", default="rayleigh")
    p.add_argument("--repeat1-runs", nargs="*", default=[],
                   help="defenses_keyed.py --repeat 1 runs of this session: kept as they are (a check against "
                        "session 15's figures), and the repeat=1 figures of a draw session 15 has no key-EOT run of")
    p.add_argument("--equal-uses-runs", nargs="*", default=[],
                   help="runs of another codec at the one-copy link's channel uses (e.g. switched-cbr1_12, 256 "
                        "pilots, --repeat 2), put beside the one-copy figures of the same draws")
    p.add_argument("--out", default="bench/results/defenses_keyed_s20_repeat2.json")
    a = p.parse_args()
    draws = json.loads((RESULTS / "defenses_keyed_s15_draws.json").read_text())
    floor = json.loads((RESULTS / "defenses_keyed_s15_floor.json").read_text())
    out: dict = {"runs": {}, "per_draw": {}}
    own = {}
    for path in a.repeat1_runs:
        res = json.loads(Path(path).read_text())[a.channel]
        own[res["seed"]] = res
        out["repeat1_runs"] = {**out.get("repeat1_runs", {}), f"seed{res['seed']}": res}
    for path in a.runs:
        res = json.loads(Path(path).read_text())[a.channel]
        s = res["seed"]
        out["runs"][f"seed{s}"] = res
        fig = _figures(res)
        r2 = fig | _strongest(fig)
        r1 = repeat1(s, draws, floor, own.get(s))
        r2["strongest_pct_of_repeat1_same_draw"] = [
            _r(100 * w / c) for w, c in zip(r2["strongest"], r1["clean_same_draw"])]
        out["per_draw"][f"seed{s}"] = {f"repeat{res['repeat']}": r2, "repeat1": r1}
    seeds = sorted(out["per_draw"])
    groups = {"session15_table_draws": [k for k in seeds if k in draws], "all_draws": seeds}
    summary: dict = {}
    for group, keys in groups.items():
        if not keys or (group == "all_draws" and keys == groups["session15_table_draws"]):
            continue
        summary[group] = {"seeds": keys}
        for rep in sorted({k for d in out["per_draw"].values() for k in d}):
            summary[group][rep] = _mean([out["per_draw"][s][rep] for s in keys])
    out["summary"] = summary
    if a.equal_uses_runs:  # another codec at the one-copy link's channel uses, against that link
        eq: dict = {"per_draw": {}}
        for path in a.equal_uses_runs:
            res = json.loads(Path(path).read_text())[a.channel]
            s = res["seed"]
            eq["runs"] = {**eq.get("runs", {}), f"seed{s}": res}
            fig = _figures(res)
            fig |= _strongest(fig)
            r1 = out["per_draw"][f"seed{s}"]["repeat1"]
            fig["strongest_pct_of_repeat1_same_draw"] = [_r(100 * w / c) for w, c in zip(fig["strongest"], r1["clean_same_draw"])]
            fig["clean_minus_repeat1_same_draw"] = [_r(x - y) for x, y in zip(fig["clean_same_draw"], r1["clean_same_draw"])]
            fig["strongest_minus_repeat1"] = [_r(x - y) for x, y in zip(fig["strongest"], r1["strongest"])]
            eq["per_draw"][f"seed{s}"] = fig
            eq["codec"], eq["channel_uses"], eq["repeat"] = res["image_codec"], res["channel_uses"], res["repeat"]
        keys = sorted(eq["per_draw"])
        eq["summary"] = {"seeds": keys, "mean": _mean([eq["per_draw"][k] for k in keys]),
                         "repeat1_same_draws": _mean([out["per_draw"][k]["repeat1"] for k in keys])}
        # the clean mean of draws 0-3 (every run's "defended"): this codec, and the default codec with
        # one keyed copy and undefended (session 15's runs)
        one = draws[sorted(draws)[0]]["rows"][0]
        eq["clean_4_draws"] = {"this": res["rows"][0]["defended"], "default_one_copy": one["defended"],
                               "default_undefended": one["undefended"]}
        eq["clean_4_draws"]["cost_db_vs_default_undefended"] = [
            _r(u - c) for u, c in zip(one["undefended"], res["rows"][0]["defended"])]
        eq["clean_4_draws"]["cost_db_vs_default_one_copy"] = [
            _r(u - c) for u, c in zip(one["defended"], res["rows"][0]["defended"])]
        out["equal_uses"] = eq
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
