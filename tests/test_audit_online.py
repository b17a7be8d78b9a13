"""`agenttrace audit --online`: a URL the run never fetched is checked live; a 2xx backs the
claim, anything else fails it with what the live check got."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, run_cli

import agenttrace
from agenttrace.audit.online import check_url


class _Site(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        if self.path == "/no-head":
            self.send_response(405)
        else:
            self.send_response(200 if self.path.startswith("/ok") else 404)
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200 if self.path in ("/ok", "/no-head") else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_live_checks_follow_what_the_server_answers(site: str) -> None:
    assert check_url(f"{site}/ok") == (f"{site}/ok", 200, None)
    assert check_url(f"{site}/missing") == (f"{site}/missing", 404, None)
    assert check_url(f"{site}/no-head") == (f"{site}/no-head", 200, None), "GET when HEAD is refused"
    url = f"http://127.0.0.1:{free_port()}/x"
    found, status, error = check_url(url, timeout=2)
    assert (found, status) == (url, None) and error is not None and error.startswith("no answer (")


def test_audit_online_accepts_a_live_2xx_and_names_a_live_404(configured: Path, site: str) -> None:
    with agenttrace.run("cites the web") as run:
        agenttrace.claim("documented", evidence=f"{site}/ok")
        agenttrace.claim("also documented", evidence=f"{site}/missing")
    store = str(configured)
    offline = run_cli("audit", run.id, "--json", "--store", store)
    online = run_cli("audit", run.id, "--json", "--online", "--store", store)
    assert offline.returncode == 1 and online.returncode == 1

    def evidence_reasons(result: object) -> list[str]:
        import json

        gates = json.loads(result.stdout)["gates"]  # type: ignore[attr-defined]
        return [v["reason"] for g in gates if g["name"] == "evidence" for v in g["violations"]]

    never = "was never fetched with a 2xx response during the run"
    assert evidence_reasons(offline) == [
        f'claim "documented": URL {site}/ok {never}',
        f'claim "also documented": URL {site}/missing {never}',
    ]
    assert evidence_reasons(online) == [
        f'claim "also documented": URL {site}/missing {never}; checked live, it answered 404'
    ]


def test_a_server_that_does_not_speak_http_is_an_answer_not_a_crash() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def garbage() -> None:
        connection, _ = listener.accept()
        connection.recv(1024)
        connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        connection.close()

    threading.Thread(target=garbage, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    found, status, error = check_url(url, timeout=5)
    listener.close()
    assert (found, status) == (url, None)
    assert error is not None and error.startswith("no answer (") and "BadStatusLine" in error
