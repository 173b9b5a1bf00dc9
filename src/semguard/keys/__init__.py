"""Physical-layer key generation (probing, quantisation, reconciliation, privacy amplification,
confirmation) and ciphers for semantic symbols keyed by it."""

from semguard.keys.agreement import BASELINE, AgreementConfig, KeyAgreement, KeyResult, adaptive_config
from semguard.keys.probing import MODES, ProbeConfig, ProbeTrace, simulate_probes
from semguard.keys.secrecy import EveModel

__all__ = ["AgreementConfig", "BASELINE", "EveModel", "KeyAgreement", "KeyResult", "MODES", "ProbeConfig",
           "ProbeTrace", "adaptive_config", "simulate_probes"]
