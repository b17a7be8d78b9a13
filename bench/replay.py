"""LLM proxy overhead (issue 15): per-call latency of a model API call through `LLMProxy` in record
mode (forwarding to the upstream, streaming back, storing both bodies in a real artifact store off
the answer's path) and in replay mode (serving the recording; no upstream), against a direct call
to the same fake server in the same run. Two answers: a small chat completion
(`examples/fake_model_server.py`, ~450 B) and a 1 MiB streamed answer (an SSE server here: 256
events of 4 KiB, chunked). The client is `http.client` on one kept-alive connection, so little
besides the proxy is measured. Per side: the median over reps of the mean per call over `--calls`
calls; the sides alternate order. A fourth side, record mode storing nothing, shows the proxy's
own share apart from the store's (hashing, writing and fsyncing both bodies on the proxy's store
thread, which overlaps the next calls when they come back to back). Overhead = proxy - direct
(the issue's goal: under 5 ms plus the copy); ratio = proxy / direct.

The fake model server writes its headers and body in two sends; on a kept-alive connection Nagle's
algorithm and the client's delayed ACK then add ~40 ms to every direct call (and to the proxy's
upstream leg). The bench turns Nagle off in the fake server (`disable_nagle_algorithm`), as a real
API server does, so the baseline is the server's own latency.

    python bench/replay.py [--quick] [--calls N] [--reps R]
"""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from _common import clean_environment, final_json, header, median, parser

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))

from fake_model_server import ChatCompletionsHandler, start_in_thread  # noqa: E402

from agenttrace.replay.exchanges import Recording  # noqa: E402
from agenttrace.replay.proxy import LLMProxy  # noqa: E402
from agenttrace.store.artifact_store import ArtifactStore  # noqa: E402
from agenttrace.store.layout import StoreLayout  # noqa: E402

BIG_EVENTS = 256
EVENT_BYTES = 4096


class _BigStream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    events: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in self.events:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def big_events() -> list[bytes]:
    text = "x" * (EVENT_BYTES - 120)
    out = []
    for i in range(BIG_EVENTS):
        data = json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": text}}], "n": i})
        out.append(f"data: {data}\n\n".encode())
    return out


def calls(base: str, path: str, body: bytes, n: int) -> tuple[float, int]:
    """Mean seconds per call over `n` calls on one kept-alive connection; bytes of the last answer."""
    host, port = base.split("//", 1)[1].split("/", 1)[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    size = 0
    start = time.perf_counter()
    for _ in range(n):
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        size = len(response.read())
        assert response.status == 200, response.status
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / n, size


def _rep(
    rep: int,
    upstream: str,
    path: str,
    body: bytes,
    n: int,
    store: Path,
    times: dict[str, list[float]],
    drain: list[float],
) -> int:
    """One repetition of every side; the answer's size."""
    artifacts = ArtifactStore(StoreLayout(store), 1 << 40)
    recording: list[Any] = []
    size = 0

    def direct() -> None:
        nonlocal size
        t, size = calls(upstream, "/v1" + path, body, n)
        times["direct"].append(t)

    def record() -> None:
        proxy = LLMProxy(
            upstreams={"openai": upstream + "/v1"}, artifacts=artifacts, keep_bodies=True
        ).start()
        t, _ = calls(proxy.url, "/openai" + path, body, n)
        begin = time.perf_counter()
        proxy.stop()  # waits for every exchange to be stored
        drain.append(time.perf_counter() - begin)
        times["record"].append(t)
        recording[:] = sorted(proxy.exchanges, key=lambda e: e.seq)

    def forward() -> None:  # record mode storing nothing: the proxy's own share
        proxy = LLMProxy(upstreams={"openai": upstream + "/v1"}).start()
        t, _ = calls(proxy.url, "/openai" + path, body, n)
        proxy.stop()
        times["forward"].append(t)

    def replay() -> None:
        proxy = LLMProxy(recording=Recording("bench", list(recording))).start()
        t, _ = calls(proxy.url, "/openai" + path, body, n)
        proxy.stop()
        assert proxy.divergence is None
        times["replay"].append(t)

    for side in [direct, forward, record] if rep % 2 == 0 else [record, forward, direct]:
        side()
    replay()  # needs this rep's recording
    shutil.rmtree(store, ignore_errors=True)
    return size


def measure(name: str, upstream: str, path: str, body: bytes, n: int, reps: int, tmp: Path) -> dict[str, Any]:
    """Per-call seconds of each side, medians over `reps`."""
    times: dict[str, list[float]] = {"direct": [], "record": [], "forward": [], "replay": []}
    drain: list[float] = []
    size = 0
    for rep in range(reps):
        size = _rep(rep, upstream, path, body, n, tmp / f"{name}-{rep}", times, drain)
    med = {k: median(v) for k, v in times.items()}
    result = {
        "answer_bytes": size,
        "direct_ms": med["direct"] * 1e3,
        "record_ms": med["record"] * 1e3,
        "replay_ms": med["replay"] * 1e3,
        "forward_ms": med["forward"] * 1e3,
        "forward_overhead_ms": (med["forward"] - med["direct"]) * 1e3,
        "record_overhead_ms": (med["record"] - med["direct"]) * 1e3,
        "replay_overhead_ms": (med["replay"] - med["direct"]) * 1e3,
        "record_ratio": med["record"] / med["direct"],
        "replay_ratio": med["replay"] / med["direct"],
        "store_drain_ms": median(drain) * 1e3,
    }
    print(
        f"{name:>14}: {size:>8} B answer · direct {result['direct_ms']:.2f} ms/call · "
        f"record {result['record_ms']:.2f} ms (+{result['record_overhead_ms']:.2f}, "
        f"{result['record_ratio']:.2f}x) · replay {result['replay_ms']:.2f} ms "
        f"({result['replay_overhead_ms']:+.2f}, {result['replay_ratio']:.2f}x) · "
        f"record storing nothing {result['forward_ms']:.2f} ms (+{result['forward_overhead_ms']:.2f}) · "
        f"storing after the last answer {result['store_drain_ms']:.1f} ms"
    )
    return result


def main() -> None:
    ap = parser(__doc__.split("\n", 1)[0])
    ap.add_argument("--calls", type=int, default=None, help="calls per side and rep")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    clean_environment()
    header("LLM proxy overhead (record / replay vs direct)", args.quick)
    n_small = args.calls or (50 if args.quick else 300)
    n_big = max(1, (args.calls or (5 if args.quick else 30)))
    reps = args.reps or (3 if args.quick else 7)

    ChatCompletionsHandler.disable_nagle_algorithm = True
    small_server, small_base = start_in_thread()
    small_upstream = small_base.removesuffix("/v1")
    _BigStream.events = big_events()
    big_server = ThreadingHTTPServer(("127.0.0.1", 0), _BigStream)
    big_server.daemon_threads = True
    threading.Thread(target=big_server.serve_forever, daemon=True).start()
    big_upstream = f"http://127.0.0.1:{big_server.server_address[1]}"

    small_body = json.dumps(
        {"model": "fake", "messages": [{"role": "user", "content": "Say hello"}]}
    ).encode()
    big_body = json.dumps({"model": "fake", "stream": True, "messages": [{"role": "user", "content": "Go"}]})
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-", dir=args.tmp))
    try:
        print(f"calls per side and rep: small {n_small}, 1 MiB {n_big}; reps {reps}")
        small = measure("small", small_upstream, "/chat/completions", small_body, n_small, reps, tmp)
        big = measure(
            "1 MiB streamed", big_upstream, "/chat/completions", big_body.encode(), n_big, reps, tmp
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        small_server.shutdown()
        big_server.shutdown()
    print("goal: record overhead under 5 ms per call plus the copy")
    final_json({"bench": "replay", "quick": args.quick, "small": small, "big_1mib_streamed": big})


if __name__ == "__main__":
    main()
