"""Learned semantic codecs: image JSCC (DeepJSCC, SNR-adaptive ADJSCC) and task-oriented."""

from semguard.codecs.base import SemanticCodec
from semguard.codecs.deepjscc import DeepJSCC
from semguard.codecs.task import TaskCodec

__all__ = ["DeepJSCC", "SemanticCodec", "TaskCodec"]
