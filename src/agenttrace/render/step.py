"""The human answer to "what happened at step N, and why?"."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.text import Text

from .values import duration

MAX_TEXT = 600


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… ({len(text)} characters)"


def step_answer(answer: dict[str, Any]) -> Group:
    kind = answer["kind"]
    what = {
        "tool": f"tool `{answer.get('tool_name') or answer['name']}`",
        "llm": f"LLM call to {answer.get('model') or '?'}",
    }.get(kind, f"{kind} `{answer['name']}`")
    took = duration(answer["duration_ms"] / 1000) if answer["duration_ms"] is not None else "never ended"
    status = answer["status"] + (f": {answer['status_message']}" if answer["status_message"] else "")
    lines: list[Text] = [
        Text(f"Step {answer['step']} of {answer['of']} in run {answer['run_id']}: {what}", style="bold"),
        Text(f"  span {answer['span_id']} · {took} · {status}"),
    ]
    if kind == "llm":
        lines.append(Text(
            f"  finish reason {answer.get('finish_reason') or '?'} · tokens in {answer.get('input_tokens')} "
            f"out {answer.get('output_tokens')}"
        ))  # fmt: skip
        exchange = answer.get("exchange")
        if exchange:
            request, response = (exchange[k] or "-" for k in ("request_sha256", "response_sha256"))
            lines.append(Text(
                f"  recorded: {exchange['method']} {exchange['path']} → {exchange['status'] or 'no answer'} "
                f"({exchange['mode']}, exchange {exchange['seq']}) · request {request[:12]} "
                f"· answer {response[:12]} ({exchange['response_size']} bytes)"
            ))  # fmt: skip
    if kind == "tool" and answer.get("tool_call_id"):
        lines.append(Text(f"  tool call id {answer['tool_call_id']}"))
    decided = answer.get("decided_by")
    if decided:
        lines.append(Text(f"Why: step {decided['step']} asked for it: {decided['reason']}."))
    elif kind != "llm":
        lines.append(Text("Why: no LLM step before it."))
    if answer["input"] is not None:
        lines.append(Text(f"Input: {_clip(answer['input'])}"))
    if answer["output"] is not None:
        lines.append(Text(f"Output: {_clip(answer['output'])}"))
    children = answer["children"]
    gpu = answer.get("gpu")
    gpu_uses: dict[str, list[dict[str, Any]]] = {}
    if gpu is not None:
        from .gpu import marks_by_span

        gpu_uses = marks_by_span(gpu["processes"])
    if children:
        lines.append(Text("Under it:"))
        for child in children:
            if child["kind"] == "process":
                ending = (
                    f"exit {child['exit_code']}" if child["exit_code"] is not None
                    else f"signal {child['signal']}" if child["signal"] else "exit unknown"
                )  # fmt: skip
                line = Text(f"  - process `{child['command_line'] or child['name']}` ({ending})")
                if child["span_id"] in gpu_uses:
                    from .gpu import step_process_marks

                    line.append_text(step_process_marks(gpu_uses[child["span_id"]]))
                lines.append(line)
            elif child["kind"] == "http":
                call = f"{child['http_method']} {child['url'] or ''} -> {child['http_status']}"
                lines.append(Text(f"  - HTTP {call}"))
            else:
                lines.append(Text(f"  - {child['name']} ({child['status_code']})"))
    if gpu is not None:
        from .gpu import step_device_lines

        lines.extend(step_device_lines(gpu["devices"]))
    errors = answer["errors"]
    lines.append(Text("Errors: " + ("none" if not errors else "")))
    for error in errors:
        lines.append(Text(f"  - {error['name']}: {error['message']}", style="red"))
    claims = answer.get("claims") or []
    if claims:
        from .claims import claim_lines

        lines.append(Text(f"Claims made during this step ({len(claims)}):"))
        lines.extend(claim_lines(claims))
    following = answer["next_step"]
    lines.append(Text(
        f"Next: step {following['step']}, {following['kind']} `{following['name']}`." if following
        else "Next: nothing; this was the last step."
    ))  # fmt: skip
    return Group(*lines)
