"""Semantic codecs: image JSCC (DeepJSCC, SNR-adaptive ADJSCC), analog (SoftCast-style, and learned on
top of it), task-oriented, text; any of them DFT-spread over fast fading."""

from semguard.codecs import deepsc as _deepsc  # noqa: F401  (registers "deepsc")
from semguard.codecs.analog import AnalogJSCC
from semguard.codecs.base import SemanticCodec
from semguard.codecs.deepjscc import DeepJSCC
from semguard.codecs.precoded import Precoded
from semguard.codecs.switch import SNRSwitch
from semguard.codecs.task import TaskCodec

__all__ = ["AnalogJSCC", "DeepJSCC", "Precoded", "SNRSwitch", "SemanticCodec", "TaskCodec"]
