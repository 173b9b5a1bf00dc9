"""Runtime: the semantic link as processes -- frames, AEAD sealing, handshake, tx / channel / rx.

Layer 6: imports link, codecs, channels, keys and knowledge; nothing in the library imports it.
"""

from semguard.runtime.frames import Frame, FrameError, FrameType, decode_frame, encode_frame

__all__ = ["Frame", "FrameError", "FrameType", "decode_frame", "encode_frame"]
