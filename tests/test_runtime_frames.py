"""Frame format: round trip, strict parser errors, and a hypothesis fuzz run (random, truncated and
bit-flipped frames raise only FrameError, never anything else, in bounded time)."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semguard.runtime.frames import (HEADER_SIZE, MAGIC, MAX_PAYLOAD, Frame, FrameError, FrameType, decode_frame,
                                     encode_frame, iq_bytes, pack_data, unpack_data)


def _data_frame(seq: int = 7) -> bytes:
    iq = (np.arange(6) + 1j * np.arange(6)).astype(np.complex64)
    return encode_frame(Frame(FrameType.DATA, 3, seq, pack_data({"shape": [6], "id": seq}, iq)))


def test_round_trip_and_layout():
    raw = _data_frame()
    assert raw[:4] == MAGIC and raw[4] == 1 and raw[5] == FrameType.DATA
    assert struct.unpack(">I", raw[8:12])[0] == 3 and struct.unpack(">Q", raw[12:20])[0] == 7
    assert struct.unpack(">I", raw[20:24])[0] == len(raw) - HEADER_SIZE
    f = decode_frame(raw)
    side, iq = unpack_data(f.payload)
    assert side == {"shape": [6], "id": 7}
    np.testing.assert_array_equal(iq, (np.arange(6) + 1j * np.arange(6)).astype(np.complex64))


def test_iq_is_gnuradio_complex64_layout():
    # gr_complex items: little-endian float32 I then Q, no header
    raw = iq_bytes(np.array([1 + 2j, -0.5 + 0.25j], dtype=np.complex64))
    assert raw == struct.pack("<ffff", 1.0, 2.0, -0.5, 0.25)


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b[:10], "header"),
    (lambda b: b"XXXX" + b[4:], "magic"),
    (lambda b: b[:4] + b"\x02" + b[5:], "version"),
    (lambda b: b[:5] + b"\x09" + b[6:], "type"),
    (lambda b: b[:6] + b"\x80" + b[7:], "flags"),
    (lambda b: b[:7] + b"\x01" + b[8:], "reserved"),
    (lambda b: b[:-1], "length"),
    (lambda b: b + b"\x00", "length"),
    (lambda b: b[:20] + struct.pack(">I", MAX_PAYLOAD + 1) + b[24:], "length"),
])
def test_parser_names_the_field(mutate, field):
    with pytest.raises(FrameError, match=field):
        decode_frame(mutate(_data_frame()))


def test_payload_errors():
    with pytest.raises(FrameError, match="side_len"):
        unpack_data(b"\x00\x00")
    with pytest.raises(FrameError, match="side_len"):
        unpack_data(struct.pack(">I", 100) + b"{}")
    with pytest.raises(FrameError, match="side info"):
        unpack_data(struct.pack(">I", 2) + b"\xff\xfe")
    with pytest.raises(FrameError, match="JSON object"):
        unpack_data(struct.pack(">I", 2) + b"[]")
    with pytest.raises(FrameError, match="iq"):
        unpack_data(struct.pack(">I", 2) + b"{}" + b"\x00" * 5)


def _parse(raw: bytes) -> None:
    try:
        f = decode_frame(raw)
        if f.type == FrameType.DATA:
            unpack_data(f.payload)
    except FrameError:
        pass


_VALID = _data_frame()


@settings(max_examples=1000, deadline=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(raw):
    _parse(raw)
    _parse(MAGIC + b"\x01" + raw)


@settings(max_examples=1000, deadline=200)
@given(st.lists(st.integers(0, 8 * len(_VALID) - 1), min_size=1, max_size=8), st.integers(0, len(_VALID)))
def test_fuzz_bit_flips_and_truncation(bits, cut):
    b = bytearray(_VALID)
    for i in bits:
        b[i // 8] ^= 1 << (i % 8)
    t0 = time.perf_counter()
    _parse(bytes(b))
    _parse(bytes(b[:cut]))
    assert time.perf_counter() - t0 < 0.05
