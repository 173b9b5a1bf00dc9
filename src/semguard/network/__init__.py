"""Networked semantic inference: robust fusion, gossip consensus, emergency priority, offloading.

Maths lives in pure functions (``fusion``, ``consensus``, ``graph``, ``trust``, ``priority``,
``offload``); the experiment modules orchestrate codecs and channels around them.  Importing this
package registers the fusion rules (registry family ``"fusion"``).
"""

from semguard.network.consensus import average_step, gossip, wmsr_step
from semguard.network.fusion import (
                                     NEEDS_MINORITY,
                                     check_byzantine_fraction,
                                     coordinate_median,
                                     fuse_mean,
                                     geometric_median,
                                     masked_trimmed_mean,
                                     trimmed_mean,
                                     weighted_mean,
                                     weighted_median,
)
from semguard.network.graph import (
                                     check_graph,
                                     complete,
                                     is_connected,
                                     make_graph,
                                     random_geometric,
                                     ring,
                                     robustness,
)
from semguard.network.trust import (
                                     cap_exclusions,
                                     disagreement_gap,
                                     flag_agents,
                                     history_z,
                                     penalise,
                                     replay_statistic,
                                     robust_z,
                                     trust_weights,
                                     update_reputation,
                                     welford,
)

__all__ = [
                                     "NEEDS_MINORITY",
                                     "average_step",
                                     "cap_exclusions",
                                     "check_byzantine_fraction",
                                     "check_graph",
                                     "complete",
                                     "coordinate_median",
                                     "disagreement_gap",
                                     "flag_agents",
                                     "fuse_mean",
                                     "geometric_median",
                                     "gossip",
                                     "history_z",
                                     "is_connected",
                                     "make_graph",
                                     "masked_trimmed_mean",
                                     "penalise",
                                     "random_geometric",
                                     "replay_statistic",
                                     "ring",
                                     "robust_z",
                                     "robustness",
                                     "trimmed_mean",
                                     "trust_weights",
                                     "update_reputation",
                                     "weighted_mean",
                                     "weighted_median",
                                     "welford",
                                     "wmsr_step",
]
