"""The channel socket's parser of client frames (RFC 6455 §5): whatever way a client masks,
fragments and a network splits its messages, the same messages come out; broken frames are
refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.channel_socket import ClientFrames, FrameError


def client_frame(opcode: int, payload: bytes, mask: bytes, fin: bool = True) -> bytes:
    length = len(payload)
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack(">BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack(">BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack(">BBQ", first, 0x80 | 127, length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


MESSAGES = st.lists(st.tuples(st.sampled_from([1, 2, 9]), st.binary(max_size=300),
                              st.binary(min_size=4, max_size=4), st.integers(1, 4)),
                    min_size=1, max_size=6)


@given(messages=MESSAGES, cuts=st.lists(st.integers(1, 50), max_size=20))
def test_messages_come_out_whole_however_sent(messages, cuts):
    wire = b""
    expected = []
    for opcode, payload, mask, pieces in messages:
        if opcode == 9:  # control frames are never fragmented
            payload = payload[:125]
            wire += client_frame(9, payload, mask)
        else:
            step = max(1, len(payload) // pieces)
            chunks = [payload[i:i + step] for i in range(0, len(payload), step)] or [b""]
            for n, chunk in enumerate(chunks):
                wire += client_frame(opcode if n == 0 else 0, chunk, mask,
                                     fin=n == len(chunks) - 1)
        expected.append((opcode, payload))
    parser, got, at = ClientFrames(), [], 0
    for cut in cuts:
        got += parser.feed(wire[at:at + cut])
        at += cut
    got += parser.feed(wire[at:])
    assert got == expected


@pytest.mark.parametrize("frame", [
    b"\x81\x05hello",  # not masked
    b"\xc1\x80\x00\x00\x00\x00",  # reserved bit (no extension agreed)
    b"\x80\x80\x00\x00\x00\x00",  # continuation outside a message
    b"\x09\x80\x00\x00\x00\x00",  # a fragmented ping
    b"\x83\x80\x00\x00\x00\x00",  # opcode 3 is reserved
])
def test_broken_frames_are_refused(frame):
    with pytest.raises(FrameError):
        ClientFrames().feed(frame)
