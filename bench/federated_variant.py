"""bench/federated.py with the reputation rules' ``ReputationConfig`` fields overridden (diagnosis runs).

    PYTHONPATH=src python bench/federated_variant.py root_gate=False -- --strategies reputation-root \\
        --attacks adaptive_bias --seeds 0 --fractions 0.3 --out out.json

Everything before ``--`` is ``FIELD=VALUE`` (``True``/``False`` or a number); everything after it goes
to ``bench/federated.py`` unchanged.  The overrides apply to every run of the reputation rules.
"""

from __future__ import annotations

import sys
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import federated  # noqa: E402  (bench/federated.py)

from semguard.federated import engine  # noqa: E402
from semguard.federated import reputation as R  # noqa: E402
from semguard.federated.strategy import ServerAggregator  # noqa: E402


def parse(pairs: list[str]) -> R.ReputationConfig:
    names = {f.name for f in fields(R.ReputationConfig)}
    over: dict[str, object] = {}
    for a in pairs:
        k, sep, v = a.partition("=")
        if not sep or k not in names:
            raise SystemExit(f"bad override {a!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(names))}")
        default = getattr(R.ReputationConfig(), k)
        over[k] = (v == "True") if v in ("True", "False") else int(v) if isinstance(default, int) else float(v)
    return replace(R.ReputationConfig(), **over)


def main() -> None:
    if "--" not in sys.argv:
        raise SystemExit("usage: federated_variant.py FIELD=VALUE ... -- bench/federated.py arguments")
    i = sys.argv.index("--")
    cfg = parse(sys.argv[1:i])
    engine.Federation.aggregator = lambda self: ServerAggregator(  # type: ignore[method-assign]
        self.cfg.strategy, self.cfg.clients, self.cfg.malicious, self.dim, reputation=cfg)
    print(f"rule config {cfg}", flush=True)
    federated.main(sys.argv[i + 1:])


if __name__ == "__main__":
    main()
