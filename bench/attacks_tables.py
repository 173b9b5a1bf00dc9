"""Markdown tables of docs/attacks.md from the attack benches' JSON (no attack is run here).

    PYTHONPATH=src python bench/attacks_tables.py > /tmp/attack_tables.md

Reads ``bench/results/attacks40_{awgn,rayleigh}.json`` (or their ``.d/records.jsonl`` while a run is
still going), ``attacks40_digital_{awgn,rayleigh}.json``, ``attacks_task.json`` and
``attacks_text.json``; prints per codec the PSNR table, the strongest attack, the universal minus
white-box gap, and the learned-vs-separated attack-power ratios; the task and text tables.

    PYTHONPATH=src python bench/attacks_tables.py --grid attacks256 --anchor
    PYTHONPATH=src python bench/attacks_tables.py --grid attacks256 --anchor \\
        --extra bench/results/attacks256_rayleigh_s15_*.json

``--extra`` merges more grid JSON (session 15's ``pgd-continuation`` cells, session 16's
``pgd-ladder``); where several white-box attacks ran, a row gives each budget's mean over photos of the
per-photo best of them.  ``--ratios`` adds the learned / separated attack power for 20 dB of damage,
white-box against the digital link's strongest jammer (its 5 dB and 1 dB grids joined), by plain
``pgd`` and by that best white-box figure, with the attacks that supplied it::

    PYTHONPATH=src python bench/attacks_tables.py --grid attacks256 --anchor --ratios --extra \
        bench/results/attacks256_pgd30_*.json bench/results/attacks256_*_s15_*.json bench/results/attacks256_*_s16_*.json

reads the image grid from ``attacks256_{awgn,rayleigh}`` instead (the full 256x256 photos; without
``--anchor`` the digital link's from ``attacks256_digital_{awgn,rayleigh}``) and, with
``--anchor``, compares every AWGN codec with issue 18's calibration anchor (:data:`ANCHOR`) by the drop
from clean PSNR, since the clean PSNRs differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

R = Path("bench/results")

# issue 18's calibration: a conv DeepJSCC, 28.9 dB clean at 10 dB AWGN, cbr 1/6, 256x256 photos;
# PSNR (dB) under each attack by PSR (dB)
ANCHOR_CLEAN = 28.9
ANCHOR = {"gaussian": {-20.0: 28.9, -10.0: 28.4}, "pgd": {-20.0: 24.0, -10.0: 15.4},
          "universal": {-20.0: 26.0, -10.0: 16.9}}


WHITE_BOX = ("pgd", "pgd-transfer", "pgd-continuation", "pgd-ladder")  # the same knowledge, different starts


def _records(channel: str, grid: str = "attacks40", extra: tuple[str, ...] = ()) -> list[dict]:
    """The grid's records, then those of the ``extra`` JSON files of this channel (a later cell of the
    same codec, attack and budget replaces an earlier one)."""
    p = R / f"{grid}_{channel}.json"
    q = R / f"{grid}_{channel}.d" / "records.jsonl"
    recs = (json.loads(p.read_text())["records"] if p.exists()
            else [json.loads(s) for s in q.read_text().splitlines()] if q.exists() else [])
    for e in map(Path, extra):  # a grid's JSON, or its <out>.d folder while it runs
        more = ([json.loads(s) for s in (e / "records.jsonl").read_text().splitlines() if s.strip()] if e.is_dir()
                else json.loads(e.read_text())["records"])
        recs += [r for r in more if r["channel"] == channel]
    return list({(r["codec"], r["attack"], r["budget"]): r for r in recs}.values())


def best_white_box(rs: list[dict]) -> dict[float, float]:
    """Per budget, the mean over photos of each photo's lowest PSNR over the white-box attacks that ran
    there (:data:`WHITE_BOX`: same knowledge, so an attacker that knows the draw keeps the best)."""
    out = {}
    for b in sorted({r["budget"] for r in rs}):
        cells = [r["attacked_per_sample"] for r in rs if r["budget"] == b and r["attack"] in WHITE_BOX]
        if cells:
            out[b] = sum(min(v) for v in zip(*cells)) / len(cells[0])
    return out


def best_white_box_by(rs: list[dict]) -> dict[float, dict[str, int]]:
    """Per budget, how many photos each white-box attack gives the per-photo best (lowest PSNR) of
    :func:`best_white_box` (a tie counts for every attack that reaches it)."""
    out: dict[float, dict[str, int]] = {}
    for b in sorted({r["budget"] for r in rs}):
        cells = [(r["attack"], r["attacked_per_sample"]) for r in rs if r["budget"] == b and r["attack"] in WHITE_BOX]
        if not cells:
            continue
        won = dict.fromkeys((a for a, _ in cells), 0)
        for i in range(len(cells[0][1])):
            low = min(v[i] for _, v in cells)
            for a, v in cells:
                won[a] += v[i] <= low + 1e-9
        out[b] = won
    return out


def component_rows(recs: list[dict]) -> list[str]:
    """``pgd-ladder``'s recorded components (the per-photo PSNR of ``pgd``, ``pgd-transfer`` and
    ``pgd-continuation`` on the same draw, from the losses ``10 log10 MSE``), mean over photos per budget."""
    lad = [r for r in recs if r["attack"] == "pgd-ladder" and r.get("components")]
    if not lad:
        return []
    budgets = sorted({r["budget"] for r in lad})
    out = ["| codec | component | " + " | ".join(f"{b:g}" for b in budgets) + " |", "|" + "---|" * (len(budgets) + 2)]
    for codec in dict.fromkeys(r["codec"] for r in lad):
        rs = {r["budget"]: r["components"] for r in lad if r["codec"] == codec}
        for name in ("pgd", "pgd-transfer", "pgd-continuation", "pgd-ladder"):
            cells = [f"{-sum(rs[b][name]) / len(rs[b][name]):.2f}" if b in rs else "-" for b in budgets]
            out.append(f"| {codec} | {name} | " + " | ".join(cells) + " |")
    return out


def _digital():
    """bench/attacks_digital.py (its crossing and ratio functions), loaded beside this file."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("attacks_digital", Path(__file__).with_name("attacks_digital.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def digital_white_box(files: list[Path], level: float) -> tuple[float | None, str | None]:
    """The digital link's strongest white-box jammer (any boundary margin, any burst) at ``level`` dB of
    mean PSNR, each jammer's crossing on the union of its points over ``files`` (the 5 dB and 1 dB grids)."""
    damage_crossing, strongest = _digital().damage_crossing, _digital().strongest
    pts: dict[str, dict[float, float]] = {}
    for f in files:
        for r in json.loads(f.read_text())["records"]:
            if r["attack"].startswith(("boundary", "burst")) and r["psr_db"] is not None:
                pts.setdefault(r["attack"], {})[r["psr_db"]] = r["psnr"]
    return strongest([damage_crossing(sorted(p.items()), level) for p in pts.values()])


def ratio_rows(channel: str, grid: str, extra: tuple[str, ...], level: float = 20.0) -> list[str]:
    """Learned / separated attack power for ``level`` dB of mean PSNR, white-box against white-box: the
    learned side by plain ``pgd`` and by the best white-box per photo (:func:`best_white_box`, over
    every white-box attack the grid and ``extra`` hold), the digital side by its strongest jammer."""
    damage_crossing, power_ratio = _digital().damage_crossing, _digital().power_ratio
    files = [f for f in (R / f"{grid}_digital_{channel}.json", R / f"{grid}_digital_{channel}_fine.json") if f.exists()]
    if not files:
        return [f"(no digital records for {channel})"]
    dig = digital_white_box(files, level)
    recs = _records(channel, grid, extra)
    out = [f"digital strongest white-box jammer: {dig[1]} {dig[0]:.1f} dB ({', '.join(f.name for f in files)})", "",
           "| codec | PSR learned, pgd | power, pgd | PSR learned, best white-box | power, best white-box "
           "| best white-box from (photos won per budget) |", "|---|---|---|---|---|---|"]
    for codec in dict.fromkeys(r["codec"] for r in recs):
        rs = [r for r in recs if r["codec"] == codec]
        pgd = damage_crossing([(r["budget"], r["attacked"]) for r in rs if r["attack"] == "pgd"], level)
        best = damage_crossing(sorted(best_white_box(rs).items()), level)
        cells = []
        for c in (pgd, best):
            v, k = power_ratio(c, dig)
            cells += [_crossing(list(c), None), "-" if v is None else f"{'' if k == '=' else k + ' '}{v:.2g}x"]
        by = "; ".join(f"{b:g}: " + ", ".join(f"{a} {n}" for a, n in w.items() if n) for b, w in best_white_box_by(rs).items())
        out.append(f"| {codec} | " + " | ".join(cells) + f" | {by} |")
    return out


def anchor_rows(recs: list[dict]) -> list[str]:
    """Per codec, attack and anchor PSR: our PSNR and drop from clean against the anchor's; ``yes`` where
    our drop is at least the anchor's (our attack at least as strong)."""
    out = [f"| codec (clean) | attack | PSR | PSNR | drop | anchor PSNR (clean {ANCHOR_CLEAN:g}) | anchor drop "
           "| at least as strong |", "|---|---|---|---|---|---|---|---|"]
    for codec in dict.fromkeys(r["codec"] for r in recs):
        for att, cells in ANCHOR.items():
            for b, a in cells.items():
                r = next((r for r in recs if r["codec"] == codec and r["attack"] == att and r["budget"] == b), None)
                if r is None:
                    continue
                drop, adrop = r["clean"] - r["attacked"], ANCHOR_CLEAN - a
                out.append(f"| {codec} ({r['clean']:.2f}) | {att} | {b:g} | {r['attacked']:.2f} | {drop:.2f} | "
                           f"{a:.1f} | {adrop:.1f} | {'yes' if drop >= adrop - 1e-9 else 'no'} |")
    return out


def image_tables(channel: str, grid: str = "attacks40", extra: tuple[str, ...] = ()) -> list[str]:
    recs = _records(channel, grid, extra)
    out = []
    if not recs:
        return [f"(no records for {channel})"]
    budgets = sorted({r["budget"] for r in recs})
    head = "| codec (clean) | attack | " + " | ".join(f"{b:g}" for b in budgets) + " | mean |"
    out += [head, "|" + "---|" * (len(budgets) + 3)]
    summary = []
    for codec in dict.fromkeys(r["codec"] for r in recs):
        rs = [r for r in recs if r["codec"] == codec]
        means = {}
        for att in dict.fromkeys(r["attack"] for r in rs):
            row = {r["budget"]: r["attacked"] for r in rs if r["attack"] == att}
            means[att] = sum(row.values()) / len(row) if len(row) == len(budgets) else None
            cells = " | ".join(f"{row[b]:.2f}" if b in row else "-" for b in budgets)
            m = f"{means[att]:.2f}" if means[att] is not None else "-"
            out.append(f"| {codec} ({rs[0]['clean']:.2f}) | {att} | {cells} | {m} |")
        if sum(r["attack"] in WHITE_BOX for r in rs) > len({r["budget"] for r in rs if r["attack"] == "pgd"}):
            bw = best_white_box(rs)
            cells = " | ".join(f"{bw[b]:.2f}" if b in bw else "-" for b in budgets)
            out.append(f"| {codec} ({rs[0]['clean']:.2f}) | best white-box per photo | {cells} | - |")
        full = {a: v for a, v in means.items() if v is not None}
        common = set(budgets)
        for att in means:
            common &= {r["budget"] for r in rs if r["attack"] == att}
        shared = {att: sum(r["attacked"] for r in rs if r["attack"] == att and r["budget"] in common)
                  for att in means}
        pgd = {r["budget"]: r["attacked"] for r in rs if r["attack"] == "pgd"}
        uni = {r["budget"]: r["attacked"] for r in rs if r["attack"] == "universal"}
        gap = " / ".join(f"{uni[b] - pgd[b]:.1f}" for b in budgets if b in pgd and b in uni)
        summary.append(f"- {codec}: strongest {min(full, key=full.get) if full else '-'} (complete rows), "
                       f"{min(shared, key=shared.get) if common else '-'} (over the budgets all ran: "
                       f"{' / '.join(f'{b:g}' for b in sorted(common))}); "
                       f"universal minus PGD (dB) {gap or '-'}")
    return out + [""] + summary


def _ratio(v: dict) -> str:
    """A learned / digital power ratio cell: exact, a bound (``<= 0.3x``), or ``-`` where none holds."""
    if v.get("power_ratio") is None:
        x = v.get("learned_over_digital_power")
        return f"{x:.2g}x" if x is not None else "-"
    b = v["power_ratio_bound"]
    return f"{'' if b == '=' else b + ' '}{v['power_ratio']:.2g}x"


def _crossing(c: list | None, fallback: float | None) -> str:
    """A PSR-for-damage cell: ``-15.5``, ``<= -25`` (already damaged there) or ``> -5`` (not reached)."""
    if c is None:
        return f"{fallback:.1f}" if fallback is not None else "not reached"
    v, k = c
    return "-" if k is None else f"{v:.1f}" if k == "=" else f"{k} {v:g}"


def digital_tables(channel: str, grid: str = "attacks40") -> list[str]:
    p = R / f"{grid}_digital_{channel}.json"
    if not p.exists():
        return [f"(no digital records for {channel})"]
    d = json.loads(p.read_text())
    rows = d["records"]
    clean = rows[0]
    budgets = sorted({r["psr_db"] for r in rows if r["psr_db"] is not None})
    out = [f"digital link clean {clean['psnr']:.2f} dB, MCS {clean['mcs']}", "",
           "| jammer | " + " | ".join(f"{b:g}" for b in budgets) + " |", "|" + "---|" * (len(budgets) + 1)]
    for att in dict.fromkeys(r["attack"] for r in rows[1:]):
        row = {r["psr_db"]: r for r in rows if r["attack"] == att}
        out.append(f"| {att} | " + " | ".join(f"{row[b]['psnr']:.2f} ({row[b]['lost']} lost)" if b in row else "-"
                                              for b in budgets) + " |")
    out += ["", f"PSR (dB) for mean PSNR <= {d['damage_db']:g} dB, digital: "
            + ", ".join(f"{k} {v:.1f}" if v is not None else f"{k} not reached" for k, v in
                        d["digital_psr_db_for_damage"].items()), "",
            "| learned codec / attack | PSR for damage | digital PSR | learned / digital power |", "|---|---|---|---|"]
    for k, v in d["learned_vs_digital"].items():
        out.append(f"| {k} | {_crossing(v.get('learned_crossing'), v['psr_db_for_damage'])} | "
                   f"{_crossing(v.get('digital_crossing'), v['digital_psr_db_for_damage'])} | {_ratio(v)} |")
    return out


def task_tables() -> list[str]:
    p = R / "attacks_task.json"
    if not p.exists():
        return ["(no task records)"]
    d = json.loads(p.read_text())
    out = [f"surrogate: {d.get('surrogate')}", ""]
    for ch in dict.fromkeys(r["channel"] for r in d["records"]):
        rs = [r for r in d["records"] if r["channel"] == ch]
        for surface in dict.fromkeys(r["surface"] for r in rs):
            ss = [r for r in rs if r["surface"] == surface]
            budgets = sorted({r["budget"] for r in ss})
            out += [f"{ch}, {surface} (clean {ss[0]['clean_accuracy']:.3f}; targeted rows: success rate)", "",
                    "| attack | " + " | ".join(f"{b:g}" for b in budgets) + " |", "|" + "---|" * (len(budgets) + 1)]
            for att in dict.fromkeys(r["attack"] for r in ss):
                row = {r["budget"]: r["accuracy"] for r in ss if r["attack"] == att}
                out.append(f"| {att} | " + " | ".join(f"{row[b]:.3f}" if b in row else "-" for b in budgets) + " |")
            out.append("")
    return out


def text_tables() -> list[str]:
    p = R / "attacks_text.json"
    if not p.exists():
        return ["(no text records)"]
    d = json.loads(p.read_text())
    out = [f"clean {d['clean']}, {d['n_eval']} sentences, universal trained on {d['n_train']}", "",
           "| attack | PSR | BLEU-1 | BLEU-4 | similarity | exact match to target | BLEU-1 to target |",
           "|---|---|---|---|---|---|---|"]
    for r in d["records"]:
        if "psr_db" in r:
            out.append(f"| {r['attack']} | {r['psr_db']:g} | {r['bleu1']:.3f} | {r['bleu4']:.3f} | {r['similarity']:.3f} | "
                       f"{r.get('exact_match', '')} | {r.get('bleu1_to_target', '') and round(r['bleu1_to_target'], 3)} |")
    out += ["", "| substitution | k | substituted | BLEU-1 | BLEU-4 | similarity (received vs sent) |", "|---|---|---|---|---|---|"]
    for r in d["records"]:
        if "k" in r:
            out.append(f"| {r['attack']} | {r['k']} | {r.get('substituted', r['k'])} | {r['bleu1']:.3f} | "
                       f"{r['bleu4']:.3f} | {r['similarity']:.3f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", default="attacks40", help="prefix of the image-codec JSON (attacks256: 256x256 photos)")
    p.add_argument("--extra", nargs="+", default=(), help="more image-grid JSON files merged in (e.g. session 15's)")
    p.add_argument("--anchor", action="store_true", help="only the image tables and the comparison with the anchor")
    p.add_argument("--ratios", action="store_true",
                   help="also the learned / separated white-box power ratios, by pgd and by the best white-box per photo")
    a = p.parse_args(argv)
    for ch in ("awgn", "rayleigh"):
        print(f"\n### Image codecs, {ch}\n")
        print("\n".join(image_tables(ch, a.grid, tuple(a.extra))))
        comp = component_rows(_records(ch, a.grid, tuple(a.extra)))
        if comp:
            print(f"\n### pgd-ladder's components, {ch} (the same draw and seed)\n")
            print("\n".join(comp))
        if a.ratios:
            print(f"\n### Learned against separated, {ch}: white-box attack power for 20 dB\n")
            print("\n".join(ratio_rows(ch, a.grid, tuple(a.extra))))
        if a.anchor:
            if ch == "awgn":
                print("\n### Against issue 18's anchor (AWGN, SNR 10 dB)\n")
                print("\n".join(anchor_rows(_records(ch, a.grid))))
            continue
        print(f"\n### Digital link, {ch}\n")
        print("\n".join(digital_tables(ch, a.grid)))
    if a.anchor:
        return 0
    print("\n### Task codec\n")
    print("\n".join(task_tables()))
    print("\n### DeepSC\n")
    print("\n".join(text_tables()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
