"""Clean fidelity of the undefended links over Rayleigh with the CSI estimated from more pilots: the
reference for keyed spreading's clean figure in the Rayleigh defence table, whose receiver reads the
block's gain off its own ``keyed_pilots(n)`` pilots (the undefended link of the table has one).

    PYTHONPATH=src python bench/rayleigh_pilot_reference.py --threads 1 \\
        --out bench/results/defenses_table_rayleigh_pilots.json

Same samples, batches and seeds as ``bench/defenses_table.py --channel rayleigh`` (batch ``i`` on
channel seed ``i``, SNR 10 dB, least-squares CSI with error variance ``N0 / pilots``).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from semguard.channels import Rayleigh
from semguard.cli.attack import _data, _metric, load_codec
from semguard.defenses.deploy import keyed_pilots
from semguard.link import Link

SNR = 10.0


def clean(codec: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, pilots: int, batch: int) -> float:
    """Mean clean fidelity over Rayleigh with ``pilots`` pilots per block, batch ``i`` on seed ``i``."""
    link = Link(codec, Rayleigh(csi="estimated", pilots=pilots))
    metric, _ = _metric(codec)
    vals: list[float] = []
    with torch.no_grad():
        for i, s in enumerate(range(0, x.shape[0], batch)):
            xb = x[s:s + batch]
            ref = xb if y is None else y[s:s + batch]
            vals += metric(link(xb, SNR, generator=torch.Generator().manual_seed(i))["output"], ref).tolist()
    return sum(vals) / len(vals)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--codecs", nargs="+", default=["task-fmnist", "deepsc", "switched-cbr1_6"])
    p.add_argument("--n-image", type=int, default=4)
    p.add_argument("--image-side", type=int, default=64)
    p.add_argument("--n-task", type=int, default=200)
    p.add_argument("--n-text", type=int, default=16)
    p.add_argument("--out", default="bench/results/defenses_table_rayleigh_pilots.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    res: dict = {"snr_db": SNR, "channel": "rayleigh, estimated CSI", "command": " ".join(sys.argv), "codecs": {}}
    for name in a.codecs:
        codec = load_codec(name)
        fam = "text" if hasattr(codec, "tokenize") else ("image" if codec.output_key == "x_hat" else "task")
        n = {"image": a.n_image, "task": a.n_task, "text": a.n_text}[fam]
        side = a.image_side if fam == "image" else None
        x, y = _data(codec, n, side)
        batch = {"image": 2, "task": 100, "text": 32}[fam]
        k = keyed_pilots(Link(codec, Rayleigh()).n_symbols(tuple(x.shape[1:])))
        row = {"n": n, "side": side, "keyed_pilots": k,
               "clean": {str(q): clean(codec, x, y, q, batch) for q in sorted({1, k})}}
        res["codecs"][name] = row
        print(name, row, flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
