"""The client's building blocks without a server: the multipart reader, the byte-balanced
groups of a parallel fetch and error decoding."""

from __future__ import annotations

import json
import struct
import sys

import pytest
from weightinit.service.client.client import WeightinitError
from weightinit.service.client.http import ProtocolError, error_from_response
from weightinit.service.client.multipart import MultipartReader
from weightinit.service.client.parallel import balance, full_header, tensor_bytes
from weightinit.service.client.prefault import MIN_BYTES, Prefaulter, address_of
from weightinit.service.client.receive import (
    MemorySink,
    arrays_from_buffer,
    fresh_buffer,
    parse_header,
)

BOUNDARY = "b0undary-7f3a"


class Trickle:
    """A source that hands out at most ``step`` bytes per read (delimiters straddle)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.position = 0
        self.step = step

    def readinto(self, buffer: memoryview) -> int:
        count = min(len(buffer), self.step, len(self.data) - self.position)
        buffer[:count] = self.data[self.position : self.position + count]
        self.position += count
        return count


def body(parts: list[tuple[dict[str, str], bytes]], preamble: bytes = b"") -> bytes:
    out = preamble
    for headers, content in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        out += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"
        out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


# A payload that holds near-misses of the delimiter: "\r\n--" and a boundary prefix.
PAYLOAD = bytes(range(256)) * 40 + f"\r\n--{BOUNDARY[:-1]}X\r\n--".encode() + b"tail"


@pytest.mark.parametrize("step", [1, 7, 4096])
@pytest.mark.parametrize("with_length", [True, False])
def test_multipart_parts_come_out_intact_however_the_bytes_arrive(step: int,
                                                                  with_length: bool) -> None:
    first = {"Content-Type": "application/octet-stream"}
    if with_length:
        first["Content-Length"] = str(len(PAYLOAD))
    data = body([(first, PAYLOAD), ({"Content-Type": "application/json"}, b'{"a": 1}')],
                preamble=b"ignored preamble\r\n")
    reader = MultipartReader(Trickle(data, step), f'multipart/mixed; boundary="{BOUNDARY}"')
    part = reader.next_part()
    assert part is not None and part.content_type == "application/octet-stream"
    assert part.read() == PAYLOAD
    report = reader.next_part()
    assert report is not None and report.content_type == "application/json"
    assert report.read() == b'{"a": 1}'
    assert reader.next_part() is None


@pytest.mark.parametrize("step", [1, 4096])
def test_multipart_part_of_content_length_zero_is_empty(step: int) -> None:
    data = body([({"Content-Length": "0"}, b""), ({}, b"{}")])
    reader = MultipartReader(Trickle(data, step), f"multipart/mixed; boundary={BOUNDARY}")
    empty = reader.next_part()
    assert empty is not None and empty.read() == b""
    second = reader.next_part()
    assert second is not None and second.read() == b"{}"


def test_multipart_skips_a_part_left_unread() -> None:
    data = body([({}, b"x" * 1000), ({"Content-Type": "application/json"}, b"{}")])
    reader = MultipartReader(Trickle(data, 100), f"multipart/mixed; boundary={BOUNDARY}")
    reader.next_part()
    second = reader.next_part()
    assert second is not None and second.read() == b"{}"


def test_multipart_cut_short_is_an_error() -> None:
    data = body([({}, PAYLOAD)])[:-40]
    reader = MultipartReader(Trickle(data, 4096), f"multipart/mixed; boundary={BOUNDARY}")
    part = reader.next_part()
    assert part is not None
    with pytest.raises(WeightinitError):
        part.read()


def test_groups_are_disjoint_cover_every_tensor_and_balance_bytes() -> None:
    tensors = [{"name": f"t{i}", "shape": [size], "dtype": "float32"}
               for i, size in enumerate([1000, 10, 900, 5, 800, 700, 300, 200, 100, 50])]
    groups = balance(tensors, 3)
    names = [name for group in groups for name in group]
    assert sorted(names) == sorted(t["name"] for t in tensors)
    assert len(names) == len(set(names))
    order = [t["name"] for t in tensors]
    assert all(group == sorted(group, key=order.index) for group in groups)  # file order
    loads = [sum(tensor_bytes(next(t for t in tensors if t["name"] == n)) for n in group)
             for group in groups]
    # Largest-first greedy (Graham 1969): the heaviest group is within 4/3 of the best
    # split, which is at least the mean load and at least the largest tensor.
    best_possible = max(sum(loads) / 3, 4 * 1000)
    assert max(loads) <= 4 / 3 * best_possible


def test_never_more_groups_than_tensors() -> None:
    tensors = [{"name": "a", "shape": [4], "dtype": "bfloat16"}]
    assert balance(tensors, 8) == [["a"]]


def test_error_bodies_of_every_shape_are_decoded() -> None:
    ours = error_from_response(413, "Too Large", b'{"error": {"code": "too_large", '
                               b'"message": "big", "details": [{"loc": ["layers"], '
                               b'"msg": "big"}]}}')
    assert (ours.status, ours.code, ours.loc, ours.message) == (413, "too_large",
                                                               ["layers"], "big")
    fastapi = error_from_response(422, "Unprocessable", b'{"detail": [{"loc": ["body", '
                                  b'"seed"], "msg": "bad"}]}')
    assert fastapi.loc == ["body", "seed"] and fastapi.message == "bad"
    plain = error_from_response(502, "Bad Gateway", b"<html>proxy</html>")
    assert plain.status == 502 and "proxy" in plain.message


def test_prefaulting_never_changes_the_contents() -> None:
    # The reader may already have written where the helper populates: contents must stay.
    pattern = bytes(range(251)) * (MIN_BYTES // 251 + 1)
    buffer = bytearray(pattern)
    prefaulter = Prefaulter(address_of(buffer), len(buffer))
    if prefaulter._thread is not None:  # Linux 5.14+; elsewhere it does nothing
        prefaulter._thread.join(timeout=60)
    prefaulter.stop()
    assert buffer == pattern



@pytest.mark.parametrize("layer", [
    {"type": "from_a_newer_release", "name": "x"},  # the schema of this client's engine
    {"type": "tensor", "name": "x", "shape": [2], "init": "no_such_initializer"},
])
def test_a_spec_this_clients_engine_cannot_plan_falls_back_to_one_stream(layer: dict) -> None:
    """The server accepted it (a newer release): the parallel fetch, which needs the local
    engine's header, is unavailable, which is a ``ProtocolError``, not a crash."""
    with pytest.raises(ProtocolError, match="cannot plan"):
        full_header({"seed": 1, "layers": [layer]}, {"tensors": []})


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_arrays_over_a_memory_sink_are_zeroed_writable_and_keep_it_alive() -> None:
    nbytes = 256 << 20
    sink = MemorySink(nbytes)
    sink.close()
    layout = parse_header(_one_tensor_header(nbytes - 4096))
    view = sink.region(0, len(layout.header))
    view[:] = layout.header
    arrays = arrays_from_buffer(sink.buffer, layout)
    del sink, view
    (array,) = arrays.values()
    assert array.flags.writeable and not array.any()
    array[-1] = 3.0
    assert array[-1] == 3.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_fresh_buffer_touches_no_page_until_written() -> None:
    """The memory arrays are received into is not memset up front (a ``bytearray`` would
    write every page on the receiving thread before the first byte could arrive)."""
    before = _rss_bytes()
    buffer = fresh_buffer(MIN_BYTES - 4096)  # a bytearray here: RSS + 64 MiB
    assert _rss_bytes() - before < (MIN_BYTES // 4)
    assert len(buffer) == MIN_BYTES - 4096 and buffer[len(buffer) // 2] == 0


def _one_tensor_header(data_bytes: int) -> bytes:
    document = json.dumps({"x": {"dtype": "F32", "shape": [data_bytes // 4],
                                 "data_offsets": [0, data_bytes // 4 * 4]}}).encode()
    document += b" " * (-len(document) % 8)
    return struct.pack("<Q", len(document)) + document
