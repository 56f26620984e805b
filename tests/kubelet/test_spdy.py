"""The SPDY/3.1 codec: byte layouts, header compression across a session, parsing from any slicing."""

from __future__ import annotations

import struct
import zlib

import pytest

from nanokube.kubelet import spdy


def test_dictionary_is_the_spdy3_one() -> None:
    # draft-mbelshe-httpbis-spdy-00: 1423 bytes; zlib names a dictionary by its Adler-32.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")


def test_control_and_data_frame_layouts() -> None:
    w = spdy.FrameWriter()
    assert w.ping(1) == bytes.fromhex("80030006" "00000004" "00000001")
    assert w.rst_stream(5, spdy.CANCEL) == bytes.fromhex("80030003" "00000008" "00000005" "00000005")
    assert w.goaway(7) == bytes.fromhex("80030007" "00000008" "00000007" "00000000")
    assert w.window_update(3, 65536) == bytes.fromhex("80030009" "00000008" "00000003" "00010000")
    assert w.data(3, b"hi") == bytes.fromhex("00000003" "00000002") + b"hi"
    assert w.data(3, fin=True) == bytes.fromhex("00000003" "01000000")
    assert w.settings([(0, 7, 65536)]) == bytes.fromhex("80030004" "0000000c" "00000001" "00000007" "00010000")
    syn = w.syn_reply(1)
    assert syn[:4] == bytes.fromhex("80030002") and syn[4] == 0
    assert int.from_bytes(syn[5:8], "big") == len(syn) - 8 and syn[8:12] == b"\x00\x00\x00\x01"
    with pytest.raises(ValueError):
        w.data(1, b"x" * (spdy.MAX_DATA + 1))


def test_header_block_encoding_lowercases_names_and_joins_values() -> None:
    block = spdy.encode_block({"StreamType": "data", "X": ["a", "b"]})
    assert block == (struct.pack(">I", 2) + struct.pack(">I", 10) + b"streamtype" + struct.pack(">I", 4) + b"data"
                     + struct.pack(">I", 1) + b"x" + struct.pack(">I", 3) + b"a\0b")
    assert spdy.decode_block(block) == {"streamtype": ["data"], "x": ["a", "b"]}
    with pytest.raises(spdy.SpdyError):
        spdy.decode_block(block[:-1])  # the last value is one byte short


def test_frames_round_trip_through_one_session_in_any_slicing() -> None:
    w, p = spdy.FrameWriter(), spdy.FrameParser()
    stream = b"".join([
        w.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"}, priority=2),
        w.syn_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"}),
        w.syn_reply(1, fin=True),
        w.headers(3, {"k": "v"}),
        w.data(3, b"payload"),
        w.data(3, fin=True),
        w.rst_stream(1, spdy.CANCEL),
        w.settings([(1, 4, 100)]),
        w.ping(2),
        w.window_update(3, 1000),
        w.goaway(3, 1),
    ])
    frames: list[spdy.Frame] = []
    for i in range(0, len(stream), 3):  # three bytes at a time: frames straddle every boundary
        frames += p.feed(stream[i:i + 3])
    assert frames == [
        spdy.SynStream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}, priority=2),
        spdy.SynStream(3, {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]}),
        spdy.SynReply(1, {}, fin=True),
        spdy.HeadersFrame(3, {"k": ["v"]}),
        spdy.DataFrame(3, b"payload"),
        spdy.DataFrame(3, b"", fin=True),
        spdy.RstStream(1, spdy.CANCEL),
        spdy.Settings([(1, 4, 100)]),
        spdy.Ping(2),
        spdy.WindowUpdate(3, 1000),
        spdy.GoAway(3, 1),
    ]


def test_header_compression_is_one_zlib_stream_per_direction() -> None:
    w = spdy.FrameWriter()
    headers = {"streamtype": "data", "port": "8080", "requestid": "12"}
    first, second = w.syn_stream(1, headers), w.syn_stream(3, headers)
    assert len(second) < len(first)  # the second block refers back into the first
    with pytest.raises(spdy.SpdyError):
        spdy.FrameParser().feed(second)  # so it cannot be read alone
    parser = spdy.FrameParser()
    assert [f.headers for f in parser.feed(first + second)] == [  # type: ignore[union-attr]
        {k: [v] for k, v in headers.items()}] * 2
    # A Go peer inflates with the SPDY/3 dictionary: do it the plain zlib way.
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert spdy.decode_block(inflate.decompress(first[18:])) == {k: [v] for k, v in headers.items()}


def test_bad_input_is_a_spdy_error() -> None:
    with pytest.raises(spdy.SpdyError, match="version"):
        spdy.FrameParser().feed(bytes.fromhex("80020006" "00000004" "00000001"))
    with pytest.raises(spdy.SpdyError, match="decompress"):
        spdy.FrameParser().feed(bytes.fromhex("80030002" "00000008" "00000001") + b"junk")
    with pytest.raises(spdy.SpdyError, match="short"):
        spdy.FrameParser().feed(bytes.fromhex("80030003" "00000004" "00000001"))
    unknown = spdy.FrameParser().feed(bytes.fromhex("8003000a" "00000001") + b"\x07")
    assert unknown == [spdy.UnknownControl(10, 0, b"\x07")]
    assert spdy.header({"port": ["80"]}, "Port") == "80" and spdy.header({}, "port") == ""
