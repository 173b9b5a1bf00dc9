"""Learned semantic codecs: image JSCC (DeepJSCC, SNR-adaptive ADJSCC) and task-oriented."""

from semguard.codecs import deepsc as _deepsc  # noqa: F401  (registers "deepsc")
from semguard.codecs.base import SemanticCodec
from semguard.codecs.deepjscc import DeepJSCC
from semguard.codecs.task import TaskCodec

__all__ = ["DeepJSCC", "SemanticCodec", "TaskCodec"]
