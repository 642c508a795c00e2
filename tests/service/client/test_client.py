"""The Python client against a real ``weightinit serve`` (and stubs for 503s and broken
bodies): the bytes it writes, the arrays it returns, reports, parallel fetch, retries and
errors."""

from __future__ import annotations

import email.utils
import hashlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_server import RunningServer, free_port
from safetensors.numpy import load_file
from server_process import StubAnswer, StubServer
from weightinit.service.cli import main as cli_main
from weightinit.service.client.client import ChecksumError, Client, DownloadedFile, WeightinitError

# Every stored dtype (float64, float32, float16, bfloat16, int64) and enough tensors for
# groups of different make-up.
SPEC: dict[str, Any] = {
    "seed": 42,
    "convention": "torch",
    "layers": [
        {"type": "linear", "name": "fc1", "in_features": 64, "out_features": 128},
        {"type": "conv2d", "name": "conv", "in_channels": 3, "out_channels": 16,
         "kernel_size": 3},
        {"type": "batch_norm", "name": "bn", "num_features": 16},
        {"type": "embedding", "name": "emb", "num_embeddings": 100, "embedding_dim": 32,
         "dtype": "bfloat16"},
        {"type": "layer_norm", "name": "ln", "normalized_shape": 32, "dtype": "float16"},
        {"type": "lstm", "name": "rnn", "input_size": 32, "hidden_size": 16},
        {"type": "linear", "name": "head", "in_features": 16, "out_features": 10,
         "dtype": "float64"},
        {"type": "tensor", "name": "extra", "shape": [7],
         "init": {"name": "normal", "mean": 0.0, "std": 0.02}},
    ],
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spec's file as the command line writes it, without any server."""
    folder = tmp_path_factory.mktemp("reference")
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(SPEC))
    assert cli_main(["init", str(spec_path), "-o", str(folder / "cli.safetensors"), "-q"]) == 0
    return folder / "cli.safetensors"


def test_init_to_file_equals_cli_bytes(server: RunningServer, reference: Path,
                                       tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    with Client(server.url) as client:
        info = client.init(SPEC, target)
    assert target.read_bytes() == reference.read_bytes()
    assert info == DownloadedFile(target, reference.stat().st_size, sha256_of(reference))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left


def test_init_without_sha256_skips_only_the_hash(server: RunningServer, reference: Path,
                                                  tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    with Client(server.url) as client:
        info = client.init(SPEC, target, sha256=False)
    assert info.file_sha256 is None
    assert target.read_bytes() == reference.read_bytes()


def test_a_model_without_tensors_is_a_header_only_file(server: RunningServer,
                                                      tmp_path: Path) -> None:
    empty = {"seed": 1, "layers": []}
    with Client(server.url) as client, Client(server.url, parallel=2) as parallel:
        info = client.init(empty, tmp_path / "empty.safetensors", verify_sha256=True)
        assert parallel.init(empty) == {}
    assert info.file_sha256 == sha256_of(tmp_path / "empty.safetensors")
    assert load_file(str(tmp_path / "empty.safetensors")) == {}


def test_cli_with_server_writes_same_bytes_and_report(server: RunningServer, reference: Path,
                                                      tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(SPEC))
    out, report = tmp_path / "out.safetensors", tmp_path / "report.json"
    code = cli_main(["init", str(spec_path), "-o", str(out), "--server", server.url,
                     "--report", str(report), "-q"])
    assert code == 0
    assert out.read_bytes() == reference.read_bytes()
    assert json.loads(report.read_text())["file_sha256"] == sha256_of(reference)


def test_init_to_arrays_equals_file_contents(server: RunningServer, reference: Path) -> None:
    with Client(server.url) as client:
        arrays = client.init(SPEC)
    expected = load_file(str(reference))
    assert list(arrays) == sorted(expected, key=list(arrays).index)  # same names
    assert set(arrays) == set(expected)
    for name, array in arrays.items():
        assert array.dtype == expected[name].dtype, name
        assert array.tobytes() == expected[name].tobytes(), name
    assert arrays["emb.weight"].dtype.name == "bfloat16"
    assert arrays["bn.num_batches_tracked"].dtype == np.int64


def test_init_with_report_is_one_pass_with_the_servers_report(
    server: RunningServer, reference: Path, tmp_path: Path
) -> None:
    target = tmp_path / "model.safetensors"
    with Client(server.url) as client:
        info, report = client.init_with_report(SPEC, target)
        arrays, report_again = client.init_with_report(SPEC)
        separate = client.report(SPEC)
    assert target.read_bytes() == reference.read_bytes()
    assert report == separate == report_again
    assert report["file_sha256"] == info.file_sha256 == sha256_of(reference)
    assert set(arrays) == {t["name"] for t in report["tensors"]}


def test_init_with_report_flag_returns_the_report(server: RunningServer, tmp_path: Path) -> None:
    with Client(server.url) as client:
        report = client.init(SPEC, tmp_path / "m.safetensors", with_report=True)
    assert report["file_sha256"] == sha256_of(tmp_path / "m.safetensors")


def test_verify_sha256_accepts_the_servers_bytes(server: RunningServer, tmp_path: Path) -> None:
    with Client(server.url) as client:
        info = client.init(SPEC, tmp_path / "m.safetensors", verify_sha256=True)
        arrays = client.init(SPEC, verify_sha256=True)
    assert info.file_sha256 == sha256_of(tmp_path / "m.safetensors")
    assert "fc1.weight" in arrays


@pytest.mark.parametrize("groups", [2, 3])
def test_parallel_fetch_equals_single_fetch(server: RunningServer, reference: Path,
                                            tmp_path: Path, groups: int) -> None:
    target = tmp_path / "parallel.safetensors"
    with Client(server.url, parallel=groups) as client:
        info = client.init(SPEC, target, verify_sha256=True)
        arrays = client.init(SPEC)
    assert sha256_of(target) == sha256_of(reference) == info.file_sha256
    expected = load_file(str(reference))
    assert {n: a.tobytes() for n, a in arrays.items()} == {
        n: a.tobytes() for n, a in expected.items()}


def test_parallel_fetch_from_several_base_urls(server: RunningServer, reference: Path,
                                               tmp_path: Path) -> None:
    target = tmp_path / "replicas.safetensors"
    with Client([server.url, server.url + "/"]) as client:
        client.init(SPEC, target)
    assert target.read_bytes() == reference.read_bytes()


def test_parallel_report_equals_the_servers_report(server: RunningServer, tmp_path: Path) -> None:
    with Client(server.url, parallel=3) as client:
        info, merged = client.init_with_report(SPEC, tmp_path / "m.safetensors")
        single = client.report(SPEC)
    assert merged == single
    assert info.file_sha256 == single["file_sha256"]


def test_parallel_fetch_keeps_select_and_shard(server: RunningServer, tmp_path: Path) -> None:
    sliced = {**SPEC, "select": ["fc1.weight", "fc1.bias", "conv.weight", "rnn.weight_ih_l0"],
              "shard": {"dim": 0, "rank": 1, "world_size": 2}}
    with Client(server.url) as single, Client(server.url, parallel=2) as parallel:
        single.init(sliced, tmp_path / "single.safetensors")
        parallel.init(sliced, tmp_path / "parallel.safetensors")
    assert sha256_of(tmp_path / "single.safetensors") == sha256_of(
        tmp_path / "parallel.safetensors")


def test_regions_in_parallel_equal_one_fetch_and_the_slices(server: RunningServer,
                                                            tmp_path: Path) -> None:
    regions = {**SPEC, "select": [
        {"name": "fc1.weight", "offset": [43, 0], "shape": [43, 64]},   # torch.chunk, 3 ways
        {"name": "emb.weight", "offset": [0, 16], "shape": [100, 16]},  # a column shard
        {"name": "conv.weight", "offset": [15, 2, 0, 1], "shape": [1, 1, 3, 2]},
        "bn.num_batches_tracked", {"name": "head.bias", "offset": [9], "shape": [1]}]}
    with Client(server.url) as single, Client(server.url, parallel=3) as parallel:
        single.init(regions, tmp_path / "single.safetensors")
        parallel.init(regions, tmp_path / "parallel.safetensors")
        arrays = parallel.init(regions)
        whole = single.init(SPEC)
    assert sha256_of(tmp_path / "single.safetensors") == sha256_of(
        tmp_path / "parallel.safetensors")
    assert np.array_equal(arrays["fc1.weight"], whole["fc1.weight"][43:86])
    assert np.array_equal(arrays["emb.weight"], whole["emb.weight"][:, 16:])
    assert np.array_equal(arrays["conv.weight"], whole["conv.weight"][15:, 2:3, :, 1:])
    assert np.array_equal(arrays["head.bias"], whole["head.bias"][9:])
    assert arrays["bn.num_batches_tracked"] == whole["bn.num_batches_tracked"]


def test_errors_carry_status_code_and_field(server: RunningServer) -> None:
    bad = {"seed": 1, "layers": [{"type": "linear", "name": "fc", "in_features": -1,
                                  "out_features": 3}]}
    with Client(server.url) as client, pytest.raises(WeightinitError) as caught:
        client.plan(bad)
    error = caught.value
    assert error.status == 422
    assert error.code
    assert error.loc == ["layers", 0, "in_features"]
    assert "in_features" in str(error)


def test_unknown_select_name_is_an_error_with_its_location(server: RunningServer,
                                                           tmp_path: Path) -> None:
    with Client(server.url) as client, pytest.raises(WeightinitError) as caught:
        client.init({**SPEC, "select": ["nope"]}, tmp_path / "m.safetensors")
    assert caught.value.status == 422
    assert caught.value.loc == ["select", 0]
    assert list(tmp_path.iterdir()) == []


# -- stubs: refusals, retries, broken bodies ------------------------------------------------

def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> StubAnswer:
    return StubAnswer(status, {"content-type": "application/json", **(headers or {})},
                      [json.dumps(document).encode()])


BUSY = {"error": {"code": "at_capacity", "message": "busy", "details": []}}


def test_retries_on_503_and_429_honouring_retry_after() -> None:
    answers = iter([_json(503, BUSY, {"Retry-After": "3"}),
                    _json(429, BUSY, {"Retry-After": "1"}),
                    _json(200, {"tensors": []})])
    waits: list[float] = []
    with StubServer(lambda scope, body: next(answers)) as stub, Client(
        stub.url, sleep=waits.append
    ) as client:
        assert client.plan({"seed": 0, "layers": []}) == {"tensors": []}
    assert waits == [3.0, 1.0]
    assert stub.requests == ["/v1/plan"] * 3


def test_retry_after_as_an_http_date_is_waited_for_and_capped() -> None:
    soon = email.utils.formatdate(time.time() + 100, usegmt=True)
    late = email.utils.formatdate(time.time() + 3600, usegmt=True)
    answers = iter([_json(503, BUSY, {"Retry-After": soon}),
                    _json(503, BUSY, {"Retry-After": late}),
                    _json(429, BUSY, {"Retry-After": "soon, maybe"}),
                    _json(200, {"tensors": []})])
    waits: list[float] = []
    with StubServer(lambda scope, body: next(answers)) as stub, Client(
        stub.url, sleep=waits.append, backoff=0.5
    ) as client:
        assert client.plan({"seed": 0, "layers": []}) == {"tensors": []}
    assert 90 < waits[0] <= 100  # the date, seen from now (a second's resolution)
    assert waits[1] == 300  # at most five minutes, whatever the server says
    # Unreadable: the backoff of a third try, 0.5 * 2**2 s plus up to 0.5 s of jitter.
    assert 2.0 <= waits[2] <= 2.5
    assert len(stub.requests) == 4


def test_connections_are_kept_alive_and_closed_with_the_client() -> None:
    seen: list[tuple[str, int]] = []

    def handler(scope: dict[str, Any], body: bytes) -> StubAnswer:
        seen.append(tuple(scope["client"]))
        return _json(200, {"tensors": []})

    with StubServer(handler) as stub:
        client = Client(stub.url)
        for _ in range(3):
            client.plan({"seed": 0, "layers": []})
        client.close()
        client.plan({"seed": 0, "layers": []})  # a closed client opens a new connection
        client.close()
    assert seen[0] == seen[1] == seen[2] != seen[3]


def test_a_file_result_is_typed_and_path_like(server: RunningServer, reference: Path,
                                              tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    with Client(server.url) as client:
        info = client.init(SPEC, target)
    assert isinstance(info, DownloadedFile) and info.path == target
    assert Path(info).read_bytes() == reference.read_bytes()  # os.PathLike
    with pytest.warns(DeprecationWarning, match="no longer a dict"):
        assert (info["path"], info["bytes"]) == (str(target), reference.stat().st_size)


def test_gives_up_after_the_retries_with_the_servers_error() -> None:
    waits: list[float] = []
    with StubServer(lambda scope, body: _json(503, BUSY)) as stub, Client(
        stub.url, retries=2, sleep=waits.append
    ) as client, pytest.raises(WeightinitError) as caught:
        client.plan({"seed": 0, "layers": []})
    assert (caught.value.status, caught.value.code) == (503, "at_capacity")
    assert len(waits) == 2  # backoff without Retry-After: 3 tries, 2 waits
    assert len(stub.requests) == 3


def test_client_errors_are_not_retried() -> None:
    bad = {"error": {"code": "invalid_spec", "message": "seed: wrong",
                     "details": [{"loc": ["seed"], "msg": "wrong"}]}}
    with StubServer(lambda scope, body: _json(422, bad)) as stub, Client(
        stub.url, sleep=lambda seconds: None
    ) as client, pytest.raises(WeightinitError) as caught:
        client.plan({"seed": 0, "layers": []})
    assert caught.value.loc == ["seed"]
    assert len(stub.requests) == 1


def test_unreachable_server_is_retried_then_named() -> None:
    waits: list[float] = []
    client = Client(f"http://127.0.0.1:{free_port()}", retries=2, sleep=waits.append)
    with client, pytest.raises(WeightinitError) as caught:
        client.plan({"seed": 0, "layers": []})
    assert caught.value.status is None and caught.value.code == "unreachable"
    assert len(waits) == 2


def test_a_retry_goes_to_the_next_replica(server: RunningServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with Client([dead, server.url], sleep=lambda seconds: None) as client:
        assert client.plan(SPEC)["total_parameters"] > 0


def _file_answer(reference: Path, *, cut: bool = False, flip: bool = False) -> StubAnswer:
    data = bytearray(reference.read_bytes())
    if flip:
        data[-1] ^= 0xFF
    pieces = [bytes(data[: len(data) // 2])] if cut else [bytes(data)]
    return StubAnswer(200, {"content-type": "application/octet-stream",
                            "content-length": str(len(data))}, pieces, cut=cut)


def test_body_cut_short_raises_and_leaves_no_file(reference: Path, tmp_path: Path) -> None:
    with StubServer(lambda scope, body: _file_answer(reference, cut=True)) as stub, Client(
        stub.url
    ) as client, pytest.raises(WeightinitError) as caught:
        client.init(SPEC, tmp_path / "m.safetensors")
    assert caught.value.code in ("interrupted", "bad_response")
    assert list(tmp_path.iterdir()) == []


def test_wrong_bytes_fail_the_sha256_check_and_leave_no_file(
    server: RunningServer, reference: Path, tmp_path: Path
) -> None:
    with Client(server.url) as real:
        report = real.report(SPEC)

    def handler(scope: dict[str, Any], body: bytes) -> StubAnswer:
        if scope["path"] == "/v1/report":
            return _json(200, report)
        return _file_answer(reference, flip=True)

    with StubServer(handler) as stub, Client(stub.url) as client:
        with pytest.raises(ChecksumError):
            client.init(SPEC, tmp_path / "m.safetensors", verify_sha256=True)
        with pytest.raises(ChecksumError):
            client.init(SPEC, verify_sha256=True)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_total_is_the_content_length(server: RunningServer, reference: Path,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm

    bars: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, total: int | None = None, **kwargs: Any) -> None:
            self.record = {"total": total, "n": 0}
            bars.append(self.record)

        def update(self, count: int) -> None:
            self.record["n"] += count

        def close(self) -> None:
            self.record["closed"] = True

    monkeypatch.setattr(tqdm, "tqdm", Recorder)
    with Client(server.url) as client:
        client.init(SPEC, tmp_path / "m.safetensors", progress=True)
    size = reference.stat().st_size
    assert bars == [{"total": size, "n": size, "closed": True}]


def test_parallel_falls_back_to_one_stream_when_the_servers_plan_differs(
    server: RunningServer, reference: Path, tmp_path: Path
) -> None:
    with Client(server.url) as real:
        other_release = real.plan(SPEC)
    other_release["tensors"][0]["expected_variance"] += 1.0  # another engine's statistics

    def handler(scope: dict[str, Any], body: bytes) -> StubAnswer:
        if scope["path"] == "/v1/plan":
            return _json(200, other_release)
        assert "select" not in json.loads(body)  # one stream, the whole file
        return _file_answer(reference)

    with StubServer(handler) as stub, Client(stub.url, parallel=3) as client, pytest.warns(
        UserWarning, match="parallel fetch unavailable"
    ):
        client.init(SPEC, tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").read_bytes() == reference.read_bytes()



class HangingServer:
    """A bare HTTP/1.1 server on 127.0.0.1 for the parallel-abort test: ``/v1/plan`` answers
    ``plan``; of the ``/v1/init`` requests, the first to arrive gets a 200 whose body never
    comes and the others a 422. ``client_closed`` is set when the client closes the hung
    connection (the server gives up waiting after ``patience_s`` and closes it itself)."""

    def __init__(self, plan: dict[str, Any], patience_s: float = 30.0) -> None:
        self.plan = json.dumps(plan).encode()
        self.patience_s = patience_s
        self.client_closed = threading.Event()
        self._inits = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> HangingServer:
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.patience_s + 5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            serving = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            serving.start()
            self._threads.append(serving)

    @staticmethod
    def _request(reader: Any) -> tuple[str, bytes] | None:
        try:
            line = reader.readline()
        except OSError:  # an idle kept-alive connection, out of patience
            return None
        if not line:
            return None
        path = line.split()[1].decode()
        length = 0
        while (header := reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return path, reader.read(length)

    def _serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            connection.settimeout(self.patience_s)
            while (request := self._request(reader)) is not None:
                path, _ = request
                if path == "/v1/plan":
                    self._send(connection, 200, self.plan)
                    continue
                with self._lock:
                    self._inits += 1
                    first = self._inits == 1
                if not first:
                    self._send(connection, 422, json.dumps(
                        {"error": {"code": "invalid_spec", "message": "no"}}).encode())
                    continue
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/"
                                   b"octet-stream\r\nContent-Length: 1000000\r\n\r\n")
                try:
                    closed = connection.recv(1) == b""
                except TimeoutError:  # the client never closed it: out of patience
                    closed = False
                except OSError:  # reset: closed too
                    closed = True
                if closed:
                    self.client_closed.set()
                return

    @staticmethod
    def _send(connection: socket.socket, status: int, body: bytes) -> None:
        connection.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def test_a_failing_group_stops_the_others_at_once(server: RunningServer,
                                                  tmp_path: Path) -> None:
    with Client(server.url) as real:
        plan = real.plan(SPEC)
    with HangingServer(plan) as hanging, Client(hanging.url, parallel=2,
                                                timeout=120) as client:
        with pytest.raises(WeightinitError) as caught:
            client.init(SPEC, tmp_path / "m.safetensors")
        # The hung stream was ended by the client, not by a timeout on either side.
        assert hanging.client_closed.wait(timeout=10)
    assert caught.value.status == 422
    assert list(tmp_path.iterdir()) == []


def test_init_tensors_are_the_arrays_of_init(server: RunningServer) -> None:
    """Torch tensors over the received buffer: the same bytes, shapes and order as the
    numpy arrays (bfloat16 without ml_dtypes; an empty tensor too)."""
    import torch

    spec = {"seed": 5, "dtype": "bfloat16", "layers": [
        {"type": "linear", "name": "fc", "in_features": 24, "out_features": 16},
        {"type": "tensor", "name": "scale", "shape": [16], "init": "ones"},
        {"type": "tensor", "name": "empty", "shape": [0, 4], "init": "zeros"}]}
    with Client(server.url) as client:
        tensors = client.init_tensors(spec)
        arrays = client.init(spec)
    assert list(tensors) == list(arrays)
    for name, array in arrays.items():
        tensor = tensors[name]
        assert tensor.dtype == torch.bfloat16 and tuple(tensor.shape) == array.shape
        assert tensor.view(torch.int16).numpy().tobytes() == array.tobytes(), name
