"""Claims with their evidence, for `agenttrace show` and `agenttrace step`."""

from __future__ import annotations

from typing import Any

from rich.text import Text


def claim_lines(claims: list[dict[str, Any]], indent: str = "  ") -> list[Text]:
    """One line per claim, then one per piece of evidence: resolved or why not."""
    lines: list[Text] = []
    for claim in claims:
        head = Text(f"{indent}- ")
        head.append(f'"{claim["text"]}"', style="bold")
        where = f" (step {claim['step']})" if claim.get("step") is not None else ""
        head.append(f"{where}  claim {claim['span_id']}", style="dim")
        lines.append(head)
        evidence = claim["evidence"] or []
        if not evidence:
            lines.append(Text(f"{indent}    no evidence", style="bold red"))
        for item in evidence:
            line = Text(f"{indent}    ")
            if item["resolved"]:
                line.append("ok  ", style="green")
            else:
                line.append("NO  ", style="bold red")
            line.append(f"{item['kind']} {item['ref']}")
            if item.get("sha256"):
                line.append(f"  sha256 {item['sha256'][:12]}…", style="dim")
            if item.get("problem"):
                line.append(f"  {item['problem']}", style="red")
            lines.append(line)
    return lines


__all__ = ["claim_lines"]
