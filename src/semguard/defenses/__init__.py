"""Defences of semantic links: randomized-smoothing certificates (input and symbol domain), signed
deployment-time certificates, Gaussian blurring before the encoder with its adaptive attack, a residual
jamming detector, a receiver that blanks outlier symbols, an interference-aware LMMSE receiver, a
pilot-consistency check, keyed spreading of the symbols under the link's session key with the attacks that
know it but not the key, a learned detector of perturbed inputs (docs/defenses-reception.md), and median smoothing of a
reconstruction receiver with its certified PSNR bound (docs/defenses.md)."""

from semguard.defenses.blanking import BlankingCodec, BlankingDefense
from semguard.defenses.blur import BlurDefense, BlurredCodec
from semguard.defenses.detector import DetectorAwarePGD, ResidualDetector, far_at_detection, roc_auc
from semguard.defenses.input_detector import DetectorAwareInputPGD, InputDetector
from semguard.defenses.interference import InterferenceAwareCodec, InterferenceAwareDefense
from semguard.defenses.keyed_attacks import CorrelatedJammer, GuessedKeyLink, KeyEOTPGD
from semguard.defenses.keyed_spread import KeyedSpreadDefense, SpreadPilotCodec
from semguard.defenses.median_smoothing import MedianSmoothedReceiver, PsnrCertificate
from semguard.defenses.pilot_check import CheckAwarePilotAttack, PilotCheckCodec, PilotCheckDefense
from semguard.defenses.smoothing import (ABSTAIN, Certification, SmoothedClassifier, certified_radius,
                                         certify_counts, clopper_pearson_lower, radius_to_psr_db)

__all__ = ["BlankingCodec", "BlankingDefense", "BlurDefense", "BlurredCodec", "DetectorAwarePGD", "ResidualDetector", "far_at_detection",
           "roc_auc", "ABSTAIN", "Certification", "SmoothedClassifier", "certified_radius", "certify_counts",
           "clopper_pearson_lower", "radius_to_psr_db", "DetectorAwareInputPGD", "InputDetector",
           "InterferenceAwareCodec", "InterferenceAwareDefense", "CheckAwarePilotAttack", "PilotCheckCodec",
           "PilotCheckDefense", "CorrelatedJammer", "GuessedKeyLink", "KeyEOTPGD", "KeyedSpreadDefense",
           "SpreadPilotCodec", "MedianSmoothedReceiver", "PsnrCertificate"]
