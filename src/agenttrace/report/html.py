"""A report page: the template filled with its inline CSS and script, the script's CSP hash, and
the run's document as JSON that cannot end its `<script>` block."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from functools import cache
from importlib import resources
from typing import Any

from ..render.values import plain

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "/": "\\/",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_TABLE = str.maketrans(_ESCAPES)


@cache
def asset(name: str) -> str:
    """A file of `agenttrace/report/assets` (shipped in the wheel with the package)."""
    return resources.files("agenttrace.report").joinpath("assets", name).read_text(encoding="utf-8")


def json_block(document: Any) -> str:
    """`document` as JSON safe inside `<script type="application/json">`: `<`, `>`, `&`, `/` and
    U+2028/9 are written as escapes, so no text in it (`</script>`, `<!--`, a URL) is markup."""
    text = json.dumps(plain(document), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_TABLE)


def script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def csp(script: str) -> str:
    """No network, no other script: the one inline script by its hash, inline styles, data: images."""
    return (
        f"default-src 'none'; script-src '{script_hash(script)}'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def page(template: str, script: str, style: str, document: Any, title: str) -> str:
    """The filled page. The script and style are agenttrace's own assets; `title` is escaped."""
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("an asset would end its own block")
    out = asset(template)
    for key, value in (
        ("{{CSP}}", html.escape(csp(script))),
        ("{{TITLE}}", html.escape(title)),
        ("{{STYLE}}", style),
        ("{{SCRIPT}}", script),
    ):
        out = out.replace(key, value, 1)
    return out.replace("{{DATA}}", json_block(document), 1)  # last: the data is never searched


def report_page(document: dict[str, Any]) -> str:
    run = document["run"]
    title = f"agenttrace report: {run['run_id']} {document['verdict']['state']}"
    return page("report.html", asset("report.js"), asset("report.css"), document, title)
