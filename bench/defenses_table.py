"""The issue-19 defence table: per codec, clean fidelity and fidelity under non-adaptive and adaptive
white-box PGD at PSR -20 / -15 / -10 / -5 dB (channel surface) and on the input (images eps 2 / 4 / 8 / 255,
the task codec 0.05 / 0.1 / 0.2), undefended against each link defence, with each defence's clean cost.

    PYTHONPATH=src python bench/defenses_table.py --threads 1 --out bench/results/defenses_table.json \\
        --docs docs/defenses.md

Every defence is deployed as ``semguard attack --defense`` deploys it (:mod:`semguard.defenses.deploy`):
fitted on sources never evaluated, AWGN at SNR 10 dB.  Per budget one PGD is crafted on the undefended
link (batch ``i`` on channel seed ``i``); *non-adaptive* is that perturbation sent unchanged through the
defended link (same seed), *adaptive* the strongest, per sample, of the attacks that know the defence
(``adaptive_attacks``), *strongest* the worse of the two per sample.  A defence that does not apply to a
codec (blur on token ids, say) is listed with the one-line reason.

``--channel rayleigh``: the same over Rayleigh block fading with pilot-estimated CSI (as ``semguard attack
--channel rayleigh``), into its own ``--out`` and its own docs block (``defenses_table_rayleigh``); keyed
cells are never reused from another bench there.

Cells are measured once and kept in ``--out`` (a rerun measures only what is missing, so a codec is
added with ``--codecs NAME``).  Cells that an existing bench already measured the same way are taken
from its JSON and say so: keyed spreading on the default image codec over the air
(``bench/results/defenses_keyed.json``, ``--keyed-json``, which also has the universal and correlated
attacks); a cell from there names the file in the table.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

from semguard.channels import AWGN, Rayleigh
from semguard.cli.attack import _data, _metric, _references, load_codec
from semguard.defenses.deploy import (
    LINK_DEFENSES,
    DefenseNotApplicable,
    adaptive_attacks,
    deploy,
    replay,
)
from semguard.link import Link
from semguard.registry import build

SNR = 10.0
PSRS = (-20.0, -15.0, -10.0, -5.0)
EPS = {"image": (2 / 255, 4 / 255, 8 / 255), "task": (0.05, 0.1, 0.2), "text": ()}
MARK = ("<!-- defenses_table:begin -->", "<!-- defenses_table:end -->")
#: the channels the table is measured over (Rayleigh: block fading, pilot-estimated CSI, as ``semguard attack``)
CHANNELS = {"awgn": "AWGN", "rayleigh": "Rayleigh (estimated CSI)"}


def channel(name: str):
    """The evaluated channel: AWGN, or Rayleigh block fading with least-squares pilot CSI."""
    if name == "awgn":
        return AWGN()
    if name == "rayleigh":
        return Rayleigh(csi="estimated")
    raise ValueError(f"--channel must be one of {', '.join(CHANNELS)}, got {name!r}")


def marks(name: str) -> tuple[str, str]:
    """The docs block a channel's table fills (AWGN keeps the original markers)."""
    return MARK if name == "awgn" else (f"<!-- defenses_table_{name}:begin -->", f"<!-- defenses_table_{name}:end -->")


def family(codec: torch.nn.Module) -> str:
    if hasattr(codec, "tokenize"):
        return "text"
    return "image" if codec.output_key == "x_hat" else "task"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batches(x: torch.Tensor, y: torch.Tensor | None, size: int):
    for i, s in enumerate(range(0, x.shape[0], size)):
        yield i, x[s:s + size], None if y is None else y[s:s + size]


def measure_budget(link: Link, deps: dict[str, Any], x: torch.Tensor, y: torch.Tensor | None, metric,
                   surface: str, budget: float, steps: int, batch: int, adaptive_input: bool,
                   skip: set[str]) -> dict[str, dict[str, Any]]:
    """One budget: the undefended PGD, and per defence the replay of its perturbation and the adaptive
    attacks; per-sample values."""
    kw = {"eps": budget} if surface == "input" else {"psr_db": budget}
    base = build("attack", "pgd", surface=surface, steps=steps, seed=0, **kw)
    out: dict[str, dict[str, Any]] = {"none": {"attacked": [], "clean": []}}
    for d in deps:
        out[d] = {"clean": [], "non_adaptive": [], "adaptive": {}}
    t0 = time.time()
    for i, xb, yb in _batches(x, y, batch):
        ref = yb if yb is not None else xb
        with torch.no_grad():
            out["none"]["clean"] += metric(link(xb, SNR, generator=_gen(i))["output"], ref).tolist()
        r = base(link, xb, SNR, labels=yb, generator=_gen(i))
        out["none"]["attacked"] += metric(r.output, ref).tolist()
        for d, dep in deps.items():
            if d in skip:
                continue
            with torch.no_grad():
                out[d]["clean"] += metric(dep.deployed(xb, SNR, generator=_gen(i))["output"], ref).tolist()
                out[d]["non_adaptive"] += metric(replay(dep.deployed, xb, SNR, r, _gen(i))["output"], ref).tolist()
            if surface == "input" and not adaptive_input and d != "blur":
                continue
            for lab, atk in adaptive_attacks(dep, base):
                ra = atk(dep.deployed, xb, SNR, labels=yb, generator=_gen(i))
                out[d]["adaptive"].setdefault(lab, []).extend(metric(ra.output, ref).tolist())
    for d in list(out):
        if d in skip:
            del out[d]
    out["none"]["seconds"] = round(time.time() - t0, 1)
    return out


def _mean(v: list[float]) -> float | None:
    return None if not v else float(sum(v) / len(v))


def summarise(cell: dict[str, Any]) -> dict[str, Any]:
    """Means, and per sample the strongest adaptive attack and the strongest of all."""
    s: dict[str, Any] = {"clean": _mean(cell["clean"]), "n": len(cell["clean"])}
    if "attacked" in cell:
        s["attacked"] = _mean(cell["attacked"])
        return s
    s["non_adaptive"] = _mean(cell["non_adaptive"])
    ad = cell["adaptive"]
    if ad:
        rows = list(zip(*ad.values()))
        s["adaptive"] = _mean([min(r) for r in rows])
        s["adaptive_by_attack"] = {k: _mean(v) for k, v in ad.items()}
        s["strongest"] = _mean([min(min(r), na) for r, na in zip(rows, cell["non_adaptive"])])
    else:
        s["adaptive"] = None
        s["strongest"] = s["non_adaptive"]
    return s


def keyed_cells(paths: list[str], codec: str) -> dict[str, dict[str, Any]]:
    """Keyed spreading's AWGN cells from ``bench/defenses_keyed.py``'s JSON files that measured ``codec``
    (the first file that has a budget wins)."""
    out: dict[str, dict[str, Any]] = {}
    for path in map(Path, paths):
        d = json.loads(path.read_text()).get("awgn") if path.exists() else None
        if not d or d.get("image_codec") != codec:
            continue
        note = d.get("note", "")
        none = next(r for r in d["rows"] if r.get("attack") == "none")
        for r in d["rows"]:
            key = f"channel@{r.get('psr_db', 0):g}"
            if r.get("attack") == "none" or key in out:
                continue
            adaptive = [k for k in ("eot", "universal_eot", "correlated") if k in r]
            per = [min(v) for v in zip(*(r[k] for k in adaptive))]
            out[key] = {
                "clean": _mean(none["defended"]), "clean_undefended": _mean(none["undefended"]), "n": len(per),
                "non_adaptive": _mean(r["non_adaptive"]), "adaptive": _mean(per),
                "adaptive_by_attack": {k: _mean(r[k]) for k in adaptive},
                "strongest": _mean([min(a, b) for a, b in zip(per, r["non_adaptive"])]),
                "source": f"{path.name}{' ' + note if note else ''}"}
    return out


def reuse(res: dict[str, Any], paths: list[str]) -> None:
    """Fill each codec's keyed-spread air cells from the keyed bench where it measured them."""
    for name, e in res.items():
        if not isinstance(e, dict) or "cells" not in e or "keyed-spread" in e.get("refused", {}) \
                or e.get("side") not in (None, 256) or e.get("channel", "awgn") != "awgn":
            continue
        for key, cell in keyed_cells(paths, name).items():
            if key in e["cells"] and "keyed-spread" not in e["cells"][key]["per_sample"]:
                e["cells"][key]["summary"]["keyed-spread"] = cell


def run_codec(name: str, res: dict[str, Any], a: argparse.Namespace, save) -> None:
    codec = load_codec(name)
    fam = family(codec)
    n = {"image": a.n_image, "task": a.n_task, "text": a.n_text}[fam]
    batch = {"image": 2, "task": 100, "text": 32}[fam]
    link = Link(codec, channel(a.channel))
    side = a.image_side if fam == "image" else None
    x, y = _data(codec, n, side)
    metric, metric_name = _metric(codec)
    entry = res.setdefault(name, {"family": fam, "metric": metric_name, "n": n, "side": side, "cells": {},
                                  "refused": {}, "channel": a.channel})
    if entry.get("channel", "awgn") != a.channel:
        raise SystemExit(f"--out holds {name} over {entry.get('channel', 'awgn')}, not {a.channel}: use another --out")
    deps = {}
    refs = _references(codec, n, side)
    for d in LINK_DEFENSES:
        try:
            deps[d] = deploy(d, link, refs, SNR, label=name, seed=0)
        except DefenseNotApplicable as e:
            entry["refused"][d] = str(e)
    entry["defenses"] = {d: dep.config for d, dep in deps.items()}
    keyed_elsewhere = "keyed-spread" in deps and side in (None, 256) and a.channel == "awgn" and any(
        json.loads(Path(f).read_text()).get("awgn", {}).get("image_codec") == name for f in a.keyed_json if Path(f).exists())
    budgets = [("channel", p) for p in a.psr] + [("input", e) for e in EPS[fam]]
    for surface, b in budgets:
        key = f"{surface}@{b:g}"
        if key in entry["cells"]:
            continue
        skip = {"keyed-spread"} if keyed_elsewhere and surface == "channel" else set()
        t = time.time()
        cell = measure_budget(link, deps, x, y, metric, surface, b, a.steps, batch,
                              adaptive_input=fam != "image" or a.image_input_adaptive, skip=skip)
        summ = {d: summarise(c) for d, c in cell.items()}
        for d in summ:
            summ[d]["source"] = "measured here"
        entry["cells"][key] = {"surface": surface, "budget": b, "steps": a.steps, "seconds": round(time.time() - t, 1),
                               "summary": summ, "per_sample": cell}
        print(f"{name} {key}: " + ", ".join(f"{d} {s.get('attacked', s.get('strongest'))}" for d, s in summ.items()),
              flush=True)
        save()


def _f(v: float | None, fam: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.2f}" if fam == "image" else f"{v:.3f}"


def _budget_label(surface: str, b: float, fam: str) -> str:
    if surface == "channel":
        return f"PSR {b:g}"
    return f"eps {round(b * 255):d}/255" if fam == "image" else f"eps {b:g}"


def markdown(res: dict[str, Any]) -> str:
    """Per codec: one row per defence; each budget cell is ``non-adaptive / adaptive`` (the undefended
    row: PGD on the undefended link); the strongest is the lower per sample, given in the JSON."""
    out = []
    for name, e in res.items():
        if not isinstance(e, dict) or "cells" not in e:
            continue
        fam, cells = e["family"], e["cells"]
        keys = sorted(cells, key=lambda k: (cells[k]["surface"] != "channel", cells[k]["budget"]))
        if not keys:
            continue
        unit = {"psnr": "PSNR dB", "accuracy": "accuracy", "bleu1": "BLEU-1"}[e["metric"]]
        what = "sources" if fam != "image" else (f"photos as {e['side']}x{e['side']} centre crops"
                                                  if e.get("side") else "photos")
        out.append(f"**{name}** ({unit}, {e['n']} {what}, {CHANNELS[e.get('channel', 'awgn')]} SNR 10 dB, "
                   f"PGD {cells[keys[0]]['steps']} steps; each cell non-adaptive / adaptive)\n")
        head = ["defence", "clean", "cost"] + [_budget_label(cells[k]["surface"], cells[k]["budget"], fam) for k in keys]
        out.append("| " + " | ".join(head) + " | source |")
        out.append("|" + " --- |" * (len(head) + 1))
        first = cells[keys[0]]["summary"]["none"]
        row = ["undefended", _f(first["clean"], fam), ""]
        row += [_f(cells[k]["summary"]["none"]["attacked"], fam) for k in keys]
        out.append("| " + " | ".join(row) + " | measured here |")
        for d in LINK_DEFENSES:
            if d in e["refused"]:
                continue
            sums = [cells[k]["summary"].get(d) for k in keys]
            have = [s for s in sums if s]
            if not have:
                continue
            clean = have[0]["clean"]
            base = have[0].get("clean_undefended", first["clean"])
            cost = None if clean is None or base is None else base - clean
            row = [d, _f(clean, fam), _f(cost, fam)]
            for s in sums:
                if not s:
                    row.append("-")
                else:
                    row.append(f"{_f(s['non_adaptive'], fam)} / {_f(s['adaptive'], fam) if s['adaptive'] is not None else 'not run'}")
            srcs = sorted({s["source"] for s in have})
            out.append("| " + " | ".join(row) + " | " + "; ".join(srcs) + " |")
        if e["refused"]:
            out.append("")
            out.append("Not applicable: " + "; ".join(f"`{d}` ({msg.split(': ', 1)[1]})" for d, msg in e["refused"].items()
                                                     if d in LINK_DEFENSES) + ".")
        out.append("")
    return "\n".join(out)


def write_docs(path: Path, text: str, mark: tuple[str, str] = MARK) -> None:
    doc = path.read_text()
    if mark[0] not in doc:
        raise SystemExit(f"--docs {path}: no {mark[0]} ... {mark[1]} block to fill")
    pat = re.compile(re.escape(mark[0]) + ".*?" + re.escape(mark[1]), re.DOTALL)
    path.write_text(pat.sub(lambda _: f"{mark[0]}\n{text}\n{mark[1]}", doc))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--codecs", nargs="+", default=["switched-cbr1_6", "task-fmnist", "deepsc"])
    p.add_argument("--n-image", type=int, default=2, help="evaluated shipped photos (default: 2)")
    p.add_argument("--image-side", type=int, default=None,
                   help="centre crops of this side for the image codec (default: the 256x256 photos)")
    p.add_argument("--n-task", type=int, default=200, help="evaluated Fashion-MNIST test images (default: 200)")
    p.add_argument("--n-text", type=int, default=32, help="evaluated shipped sentences (default: 32)")
    p.add_argument("--steps", type=int, default=8, help="PGD steps of every attack (default: 8)")
    p.add_argument("--psr", type=float, nargs="+", default=list(PSRS))
    p.add_argument("--channel", default="awgn", choices=tuple(CHANNELS),
                   help="awgn, or rayleigh block fading with pilot-estimated CSI (default: awgn; "
                        "its own --out, and its own docs block)")
    p.add_argument("--image-input-adaptive", action="store_true",
                   help="also run the receivers' adaptive attacks on image inputs (off: only blur's; costly)")
    p.add_argument("--keyed-json", nargs="+", default=["bench/results/defenses_keyed.json",
                                                       "bench/results/defenses_keyed_s11.json"],
                   help="keyed-spread air cells of the image codec from bench/defenses_keyed.py (first wins)")
    p.add_argument("--out", default="bench/results/defenses_table.json")
    p.add_argument("--docs", default=None, help="fill the defenses_table block of this markdown file")
    p.add_argument("--render-only", action="store_true", help="no measuring: render --out")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.exists() else {}

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1) + "\n")

    if not a.render_only:
        if res.get("config", {}).get("channel", a.channel) != a.channel:
            raise SystemExit(f"--out {out} was measured over {res['config']['channel']}, not {a.channel}")
        res["config"] = {"snr_db": SNR, "channel": a.channel, "attack": "pgd", "steps": a.steps, "psr_db": a.psr,
                         "eps": EPS, "command": " ".join(sys.argv)}
        for name in a.codecs:
            run_codec(name, res, a, save)
        save()
    reuse(res, a.keyed_json)
    text = markdown(res)
    print(text)
    if a.docs:
        write_docs(Path(a.docs), text, marks(res.get("config", {}).get("channel", a.channel)))


if __name__ == "__main__":
    main()
