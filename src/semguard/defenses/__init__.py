"""Defences of semantic links: randomized-smoothing certificates (input and symbol domain), signed
deployment-time certificates."""

from semguard.defenses.smoothing import (ABSTAIN, Certification, SmoothedClassifier, certified_radius,
                                         certify_counts, clopper_pearson_lower, radius_to_psr_db)

__all__ = ["ABSTAIN", "Certification", "SmoothedClassifier", "certified_radius", "certify_counts",
           "clopper_pearson_lower", "radius_to_psr_db"]
