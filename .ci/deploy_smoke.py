#!/usr/bin/env python3
"""HTTP checks for .ci/deploy-check.sh, against a container published on 127.0.0.1.

Standard library only (runs on the host's python3, outside the image). Every loop is
bounded in time; every address is on the loopback interface.

  deploy_smoke.py wait  URL TIMEOUT_S [--container-alive CMD...]
  deploy_smoke.py probe BASE_URL [--sha-out FILE]
  deploy_smoke.py auth  BASE_URL TOKEN [--sha-expect FILE]
  deploy_smoke.py drain BASE_URL --stop CMD... [--exit-timeout S]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SMALL_SPEC = {
    "seed": 1234,
    "convention": "torch",
    "layers": [
        {"type": "linear", "name": "fc1", "in_features": 64, "out_features": 32},
        {"type": "linear", "name": "fc2", "in_features": 32, "out_features": 10},
    ],
}

# ~256 MiB of float32: long enough to still be streaming when SIGTERM arrives.
BIG_SPEC = {
    "seed": 7,
    "convention": "torch",
    "dtype": "float32",
    "layers": [
        {
            "type": "tensor",
            "name": f"big.{i}",
            "shape": [4096, 4096],
            "init": {"name": "uniform", "low": -0.1, "high": 0.1},
        }
        for i in range(4)
    ],
}


def _check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing non-loopback address {host!r}")


def get(url: str, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    _check_loopback(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def post_json(
    url: str, body: dict, timeout: float = 30.0, token: str | None = None
) -> tuple[int, dict, bytes]:
    _check_loopback(url)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def tensors(blob: bytes) -> dict[str, bytes]:
    """The raw bytes of every tensor of a safetensors file."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    return {
        name: data[meta["data_offsets"][0] : meta["data_offsets"][1]]
        for name, meta in header.items()
        if name != "__metadata__"
    }


def cmd_wait(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            status, _, _ = get(args.url, timeout=2)
            if status == 200:
                print(f"{args.url} -> 200 after {attempt} attempt(s)")
                return 0
        except OSError:
            pass
        if args.container_alive:
            alive = subprocess.run(args.container_alive, capture_output=True, text=True)
            if alive.stdout.strip() not in ("true", "running"):
                print(f"container is no longer running ({alive.stdout.strip()!r})")
                return 1
        time.sleep(1)
    print(f"{args.url} not healthy within {args.timeout}s ({attempt} attempts)")
    return 1


def cmd_probe(args: argparse.Namespace) -> int:
    base = args.base.rstrip("/")
    failures = []

    def check(name: str, ok: bool, detail: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
        if not ok:
            failures.append(name)

    s, _, b = get(base + "/healthz")
    check("GET /healthz", s == 200, f"{s}")
    s, _, b = get(base + "/readyz")
    check("GET /readyz", s == 200, f"{s}")
    s, h, b = get(base + "/metrics")
    text = b.decode("utf-8", "replace")
    check("GET /metrics", s == 200 and "# TYPE" in text, f"{s}, {len(b)} bytes, Prometheus text")

    s, _, b = post_json(base + "/v1/plan", SMALL_SPEC)
    try:
        plan = json.loads(b)
    except ValueError:
        plan = {}
    expected_params = 64 * 32 + 32 + 32 * 10 + 10
    check(
        "POST /v1/plan",
        s == 200 and plan.get("total_parameters") == expected_params,
        f"{s}, total_parameters={plan.get('total_parameters')} (want {expected_params})",
    )

    s, h, b = post_json(base + "/v1/init", SMALL_SPEC)
    hl = {k.lower(): v for k, v in h.items()}
    clen = int(hl.get("content-length", -1))
    header_ok = len(b) >= 8 and int.from_bytes(b[:8], "little") + 8 <= len(b)
    check(
        "POST /v1/init",
        s == 200 and clen == len(b) and header_ok and bool(hl.get("etag")),
        f"{s}, {len(b)} bytes, Content-Length {clen}, ETag {hl.get('etag')}",
    )
    etag = hl.get("etag")
    if etag:
        req = urllib.request.Request(
            base + "/v1/init",
            data=json.dumps(SMALL_SPEC).encode(),
            headers={"Content-Type": "application/json", "If-None-Match": etag},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                s2 = r.status
        except urllib.error.HTTPError as e:
            s2 = e.code
        check("POST /v1/init If-None-Match", s2 == 304, f"{s2}")

    # A `select` returns exactly the selected tensors' bytes of the full file.
    full = tensors(b) if s == 200 else {}
    s3, _, part = post_json(base + "/v1/init", {**SMALL_SPEC, "select": ["fc2.weight"]})
    sub = tensors(part) if s3 == 200 else {}
    check(
        "POST /v1/init select",
        s3 == 200 and list(sub) == ["fc2.weight"] and sub["fc2.weight"] == full.get("fc2.weight"),
        f"{s3}, tensors {list(sub)}, bytes equal to the full file's: "
        f"{bool(sub) and sub.get('fc2.weight') == full.get('fc2.weight')}",
    )
    if args.sha_out and s == 200:
        with open(args.sha_out, "w") as f:
            f.write(hashlib.sha256(b).hexdigest())
    return 1 if failures else 0


def cmd_auth(args: argparse.Namespace) -> int:
    """With WEIGHTINIT_API_TOKENS set: the API needs a token, health endpoints do not."""
    base = args.base.rstrip("/")
    results = [
        ("GET /healthz, no token", get(base + "/healthz")[0], 200),
        ("GET /readyz, no token", get(base + "/readyz")[0], 200),
        ("GET /metrics, no token", get(base + "/metrics")[0], 200),
        ("POST /v1/plan, no token", post_json(base + "/v1/plan", SMALL_SPEC)[0], 401),
        (
            "POST /v1/plan, wrong token",
            post_json(base + "/v1/plan", SMALL_SPEC, token="not-a-token")[0],
            401,
        ),
        (
            "POST /v1/plan, valid token",
            post_json(base + "/v1/plan", SMALL_SPEC, token=args.token)[0],
            200,
        ),
    ]
    ok = True
    for name, got, want in results:
        print(f"  {'ok  ' if got == want else 'FAIL'} {name}: {got} (want {want})")
        ok &= got == want
    if args.sha_expect:
        # Another container (another "replica") returns the very same bytes.
        with open(args.sha_expect) as f:
            want_sha = f.read().strip()
        s, _, blob = post_json(base + "/v1/init", SMALL_SPEC, token=args.token)
        got_sha = hashlib.sha256(blob).hexdigest()
        same = s == 200 and got_sha == want_sha
        print(f"  {'ok  ' if same else 'FAIL'} same sha256 as the first container: {got_sha}")
        ok &= same
    return 0 if ok else 1


def cmd_drain(args: argparse.Namespace) -> int:
    """Start a long stream, SIGTERM the container, expect the stream to complete."""
    parts = urllib.parse.urlsplit(args.base)
    _check_loopback(args.base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    body = json.dumps(BIG_SPEC).encode()
    conn.request("POST", "/v1/init", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        print(f"  FAIL stream did not start: {resp.status} {resp.read()[:300]!r}")
        return 1
    expected = int(resp.getheader("Content-Length", "-1"))
    got = len(resp.read(1 << 20))  # the stream is under way
    print(f"  stream started: {got} of {expected} bytes read; sending SIGTERM")

    stopper: dict = {}

    def stop() -> None:
        t0 = time.monotonic()
        stopper["proc"] = subprocess.run(args.stop, capture_output=True, text=True)
        stopper["t"] = time.monotonic() - t0

    th = threading.Thread(target=stop)
    th.start()
    deadline = time.monotonic() + args.exit_timeout
    # While the stream drains, readiness must report 503 (new connection each time).
    readyz = None
    ready_deadline = time.monotonic() + 10
    while time.monotonic() < ready_deadline:
        try:
            readyz, _, _ = get(args.base.rstrip("/") + "/readyz", timeout=2)
        except OSError:
            readyz = None
        if readyz == 503:
            break
        time.sleep(0.2)
    print(f"  {'ok  ' if readyz == 503 else 'FAIL'} GET /readyz while draining: {readyz}")
    try:
        while time.monotonic() < deadline:
            # Read slowly at first so SIGTERM lands while bytes are still in flight.
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            if got < 8 << 20:
                time.sleep(0.05)
    except (OSError, http.client.HTTPException) as e:
        print(f"  stream broke after {got} bytes: {e!r}")
    th.join(timeout=max(1.0, deadline - time.monotonic()))
    ok = got == expected and readyz == 503
    print(
        f"  {'ok  ' if ok else 'FAIL'} in-flight stream completed across SIGTERM: "
        f"{got} of {expected} bytes"
    )
    if "proc" in stopper:
        p = stopper["proc"]
        print(
            f"  stop command exited {p.returncode} after {stopper['t']:.1f}s "
            f"{p.stdout.strip()} {p.stderr.strip()}"
        )
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("url")
    w.add_argument("timeout", type=float)
    w.add_argument("--container-alive", nargs=argparse.REMAINDER)
    p = sub.add_parser("probe")
    p.add_argument("base")
    p.add_argument("--sha-out", help="write the small spec's file sha256 here")
    a = sub.add_parser("auth")
    a.add_argument("base")
    a.add_argument("token")
    a.add_argument("--sha-expect", help="file with the sha256 another container gave")
    d = sub.add_parser("drain")
    d.add_argument("base")
    d.add_argument("--exit-timeout", type=float, default=60)
    d.add_argument("--stop", nargs=argparse.REMAINDER, required=True)
    args = ap.parse_args()
    commands = {"wait": cmd_wait, "probe": cmd_probe, "auth": cmd_auth, "drain": cmd_drain}
    return commands[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
