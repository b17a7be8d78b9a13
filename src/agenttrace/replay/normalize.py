"""The normalised request: what a replayed request is matched on, and the diff shown when it does not.

`normalise(route, method, path, body, workdir=...)` gives a dict `{route, method, path, body}`:
a JSON body parsed (after undoing a gzip/deflate `Content-Encoding`), with the volatile fields
below removed or replaced and its keys sorted; any other body as `{"sha256": ..., "size": ...}`;
no body as None. `request_key(...)` is the sha256 of that dict as canonical JSON: two requests
with the same key are the same request for replay.

Rules (what changes between two runs of the same agent doing the same thing, and why it is dropped):

- `metadata.user_id`, `metadata.session_id` removed (Anthropic, Claude Code): a per-install /
  per-session id, new every run.
- `user`, `safety_identifier` removed, top level (OpenAI): an end-user id for abuse tracking, not
  part of the prompt.
- `prompt_cache_key` removed, top level (OpenAI Responses): Codex puts its conversation id there.
- `client_metadata` removed, top level (OpenAI Responses): Codex's installation, session, thread,
  turn and window ids, and a start time.
- `id` removed from each item of a top-level `input` list (OpenAI Responses): the ids Codex makes
  up for the messages it sends (`msg_<uuid>`), new every run; `call_id` is kept.
- `turn_ids` removed, top level (Codex's `POST /analytics/codex/turn-costs`): the new random ids
  of the turns it reports on.
- `session_id`, `user_prompt_id` removed, top level (Gemini CLI): per-session / per-prompt ids.
- `cache_control` removed at any depth (Anthropic): prompt-caching markers; Claude Code moves them
  to the newest message each turn.
- `stream_options` removed, top level (OpenAI): usage-reporting bookkeeping of a stream; the answer
  served is the recorded one anyway.
- the run's working directory (and its real path) replaced by `<cwd>` in every string (all): Claude
  Code, Codex and Gemini CLI put it in their system prompt, and tool results print it; a replay
  runs in another temp dir. So is its slug, every character but ASCII letters and digits made `-`
  (`/tmp/w` -> `-tmp-w`): Claude Code names its project folder so, and its system prompt gives
  the memory directory `~/.claude/projects/<slug>/memory/`. And Gemini CLI's project id, the
  directory's base name lower-cased with every run of other characters than `a-z0-9` made one `-`,
  and `-N` added when another directory took that id (`.gemini/tmp/work-1`), is made `<project>`
  after `.gemini/tmp/` and `.gemini/history/`: its session context names that temporary folder.
- ISO timestamps replaced by `<timestamp>`, ISO dates (`2026-12-01`) and long dates (`Tuesday,
  December 1, 2026`) by `<date>`, in every string (all): the agents' system prompts carry today's
  date.
- `id` removed from `functionCall` and `functionResponse` objects (Gemini): Gemini CLI names a
  call `<tool>_<epoch ms>_<n>` itself when the model gave it no id.
- Gemini CLI's `Process Group PGID: <n>` in a shell tool's result made `Process Group PGID: <pid>`
  (all): a process id.
- Codex's command output header, `Chunk ID: <hex>` and `Wall time: <seconds> seconds`, made
  `Chunk ID: <id>` and `Wall time: <elapsed>`, in every string (all): a random id and a timing,
  sent back to the model with every tool result.

The path keeps its query string (secret parameters already redacted). Headers are not part of the
request: they carry SDK versions, retry counts and keys. A date that is part of a file the agent
read is normalised too: two requests that differ only in a date match.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from typing import Any

MISSING = "<missing>"

_TOP_LEVEL_DROP = frozenset(
    {
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "stream_options",
        "session_id",
        "user_prompt_id",
        "turn_ids",
        "client_metadata",
    }
)
_METADATA_DROP = frozenset({"user_id", "session_id"})
_ANY_DEPTH_DROP = frozenset({"cache_control"})
_CALL_OBJECTS = frozenset({"functionCall", "functionResponse"})

_TIMESTAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_LONG_DATE = re.compile(rf"\b(?:(?:{_DAYS}),?\s+)?(?:{_MONTHS})\s+\d{{1,2}},?\s+\d{{4}}\b")
_SLUG = re.compile(r"[^a-zA-Z0-9]")
_PGID = re.compile(r"\bProcess Group PGID: \d+")
_CHUNK_ID = re.compile(r"\bChunk ID: [0-9a-f]+\b")
_WALL_TIME = re.compile(r"\bWall time: \d+(?:\.\d+)? seconds\b")


def decode_body(body: bytes, content_encoding: str | None = None) -> bytes:
    """The body with a gzip or deflate content encoding undone (others: as is)."""
    encoding = (content_encoding or "").strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError):
        return body
    return body


def _workdirs(workdir: str | None) -> list[str | re.Pattern[str]]:
    if not workdir:
        return []
    import os

    found = {workdir.rstrip("/") or "/", os.path.realpath(workdir)}
    found = {w for w in found if w and w != "/"}
    ids = {
        re.sub("-+", "-", _SLUG.sub("-", os.path.basename(w).lower())).strip("-") or "project" for w in found
    }
    found |= {_SLUG.sub("-", w) for w in found}  # Claude Code's project folder name
    project = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))  # Gemini CLI's project id
    gemini = re.compile(rf"(\.gemini/(?:tmp|history)/)(?:{project})(?:-\d+)?(?![\w-])")
    return [*sorted(found, key=len, reverse=True), gemini]


def _text(value: str, workdirs: list[str | re.Pattern[str]]) -> str:
    for w in workdirs:  # each rule only where its text is (a request is normalised on the hot path)
        if isinstance(w, str):
            value = value.replace(w, "<cwd>")
        elif ".gemini/" in value:
            value = w.sub(r"\1<project>", value)
    if "Chunk ID: " in value:
        value = _CHUNK_ID.sub("Chunk ID: <id>", value)
    if "Wall time: " in value:
        value = _WALL_TIME.sub("Wall time: <elapsed>", value)
    if "PGID: " in value:
        value = _PGID.sub("Process Group PGID: <pid>", value)
    value = _TIMESTAMP.sub("<timestamp>", value)
    value = _ISO_DATE.sub("<date>", value)
    return _LONG_DATE.sub("<date>", value)


def _clean(value: Any, workdirs: list[str | re.Pattern[str]], depth: int) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            if key in _ANY_DEPTH_DROP or (depth == 0 and key in _TOP_LEVEL_DROP):
                continue
            item = value[key]
            if depth == 0 and key == "metadata" and isinstance(item, dict):
                item = {k: v for k, v in item.items() if k not in _METADATA_DROP}
                if not item:
                    continue
            if key in _CALL_OBJECTS and isinstance(item, dict):
                item = {k: v for k, v in item.items() if k != "id"}
            if depth == 0 and key == "input" and isinstance(item, list):
                item = [{k: v for k, v in i.items() if k != "id"} if isinstance(i, dict) else i for i in item]
            out[_text(key, workdirs)] = _clean(item, workdirs, depth + 1)
        return out
    if isinstance(value, list):
        return [_clean(v, workdirs, depth + 1) for v in value]
    if isinstance(value, str):
        return _text(value, workdirs)
    return value


def normalise(
    route: str,
    method: str,
    path: str,
    body: bytes | None,
    *,
    workdir: str | None = None,
    content_encoding: str | None = None,
) -> dict[str, Any]:
    """The request as replay matches it (see the module docstring for the rules)."""
    workdirs = _workdirs(workdir)
    normal: Any = None
    if body:
        raw = decode_body(body, content_encoding)
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            normal = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
        else:
            normal = _clean(parsed, workdirs, 0)
    return {"route": route, "method": method.upper(), "path": _text(path, workdirs), "body": normal}


def canonical(normal: dict[str, Any]) -> bytes:
    return json.dumps(normal, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request_key(normal: dict[str, Any]) -> str:
    """The sha256 of the normalised request."""
    return hashlib.sha256(canonical(normal)).hexdigest()


def model_of(body: bytes | None, content_encoding: str | None = None) -> str | None:
    """The request's `model`, when its body is JSON with one."""
    if not body:
        return None
    try:
        parsed = json.loads(decode_body(body, content_encoding))
    except (ValueError, UnicodeDecodeError):
        return None
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else None


def shorten(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) and value == MISSING else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _string_change(old: str, new: str, limit: int = 80) -> tuple[str, str]:
    """The two strings around their first difference (a long prompt that differs in one word)."""
    if len(old) <= limit and len(new) <= limit:
        return json.dumps(old, ensure_ascii=False), json.dumps(new, ensure_ascii=False)
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    begin = max(0, start - 20)
    span = limit - 10

    def cut(s: str) -> str:
        piece = s[begin : begin + span]
        return (
            ("…" if begin else "")
            + json.dumps(piece, ensure_ascii=False)
            + ("…" if begin + span < len(s) else "")
        )

    return cut(old), cut(new)


def _walk(path: str, old: Any, new: Any, out: list[str], limit: int) -> None:
    if len(out) >= limit or old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _walk(f"{path}.{key}" if path else key, old.get(key, MISSING), new.get(key, MISSING), out, limit)
        return
    if isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            _walk(
                f"{path}[{i}]",
                old[i] if i < len(old) else MISSING,
                new[i] if i < len(new) else MISSING,
                out,
                limit,
            )
        return
    if isinstance(old, str) and isinstance(new, str) and old != MISSING and new != MISSING:
        a, b = _string_change(old, new)
        out.append(f"{path}: {a} -> {b}")
        return
    out.append(f"{path}: {shorten(old)} -> {shorten(new)}")


def request_diff(recorded: dict[str, Any] | None, new: dict[str, Any], limit: int = 20) -> list[str]:
    """Where two normalised requests differ: one line per JSON path (`body.messages[1].content:
    "old…" -> "new…"`), values shortened around the first difference; at most `limit` lines, then
    a count of the rest. `recorded` None: nothing was expected there."""
    if recorded is None:
        return ["no recorded request is left to match: the recording ended here"]
    out: list[str] = []
    _walk("", recorded, new, out, limit + 1)
    if len(out) > limit:
        return [*out[:limit], "… and more differences"]
    return out


__all__ = ["canonical", "decode_body", "model_of", "normalise", "request_diff", "request_key", "shorten"]
