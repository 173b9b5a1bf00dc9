"""The aggregation rules alone against ALIE, the adaptive search, adaptive_mimic and adaptive_bias (no training).

    PYTHONPATH=src python bench/federated_rule.py

7 honest updates ``base + N(0, 1)`` in 2000 dimensions and 3 attackers, over 5 rounds (our rule's
state carried between them).  Prints the mean ``||aggregate - honest mean|| / ||honest mean||``
(lower is better) and, for ours, the share of the weight the attackers got.
"""

from __future__ import annotations

import torch

from semguard.federated import aggregate as A
from semguard.federated import reputation as R
from semguard.federated.attacks import ALIE, Adaptive, AdaptiveBias, AdaptiveMimic, AttackView

D, K, M = 2000, 10, 3


def main() -> None:
    torch.set_num_threads(1)
    rules = {"ours": None, "fedavg": A.fedavg, "median": A.coordinate_median,
             "trimmed_mean": lambda X: A.trimmed_mean(X, 0.3), "multikrum": lambda X: A.krum(X, M, K - M)[0]}
    for attack in (ALIE(), Adaptive(), AdaptiveMimic(), AdaptiveBias()):
        for name, rule in rules.items():
            g = torch.Generator().manual_seed(7)
            state = R.ReputationState.init(K, D)
            dist, share = [], []
            for _ in range(5):
                base = torch.randn(D, generator=g)
                H = base + torch.randn(K - M, D, generator=g)
                fn = rule or (lambda X, s=state: R.reputation_aggregate(X, torch.arange(K), s)[0])
                X = torch.cat([H, attack.craft(H[:M], AttackView(D, honest=H, aggregate=fn))])
                if rule is None:
                    agg, state, info = R.reputation_aggregate(X, torch.arange(K), state)
                    share.append(float(info.weights[K - M:].sum()))
                else:
                    agg = rule(X)
                dist.append(float((agg - H.mean(0)).norm() / H.mean(0).norm()))
            extra = f"  attackers' weight {sum(share) / len(share):.2f}" if share else ""
            print(f"{attack.name:15s} {name:13s} {sum(dist) / len(dist):.3f}{extra}")


if __name__ == "__main__":
    main()
