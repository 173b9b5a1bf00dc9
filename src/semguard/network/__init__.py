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
                                     trimmed_mean,
                                     weighted_mean,
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
                                     flag_agents,
                                     replay_statistic,
                                     trust_weights,
                                     update_reputation,
)

__all__ = [
                                     "NEEDS_MINORITY",
                                     "average_step",
                                     "check_byzantine_fraction",
                                     "check_graph",
                                     "complete",
                                     "coordinate_median",
                                     "flag_agents",
                                     "fuse_mean",
                                     "geometric_median",
                                     "gossip",
                                     "is_connected",
                                     "make_graph",
                                     "random_geometric",
                                     "replay_statistic",
                                     "ring",
                                     "robustness",
                                     "trimmed_mean",
                                     "trust_weights",
                                     "update_reputation",
                                     "weighted_mean",
                                     "wmsr_step",
]
