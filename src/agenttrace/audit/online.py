"""`agenttrace audit --online`: check URLs cited as evidence live, for those the run itself never
fetched with a 2xx. Each URL gets a HEAD (a GET when HEAD is refused), redirects followed."""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from .. import __version__

TIMEOUT_S = 10.0
WORKERS = 8


def check_url(url: str, timeout: float = TIMEOUT_S) -> tuple[str, int | None, str | None]:
    """(url, HTTP status, error): the status of the final answer, or why there was none."""
    status: int | None = None
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(
            url, method=method, headers={"User-Agent": f"agenttrace/{__version__} (evidence check)"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return url, response.status, None
        except urllib.error.HTTPError as exc:
            status = exc.code
            if exc.code not in (405, 501):  # HEAD not allowed: try GET
                return url, status, None
        except Exception as exc:  # URLError, OSError, a server that does not speak HTTP, ...
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            return url, None, f"no answer ({reason})"
    return url, status, None


def check_urls(urls: list[str], timeout: float = TIMEOUT_S) -> list[tuple[str, int | None, str | None]]:
    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(urls))) as pool:
        return list(pool.map(lambda u: check_url(u, timeout), urls))


__all__ = ["check_url", "check_urls"]
