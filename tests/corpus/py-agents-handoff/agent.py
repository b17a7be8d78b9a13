"""A multi-agent hand-off on the OpenAI Agents SDK (Responses API): a triage agent hands the user's
question to a billing agent, which looks the invoice up with its tool and answers."""

import json
from pathlib import Path

from agents import Agent, Runner, function_tool


@function_tool
def lookup_invoice(number: str) -> str:
    """The invoice with this number, as JSON."""
    return json.dumps(json.loads(Path("invoices.json").read_text())[number])


billing = Agent(
    name="billing",
    instructions="Answer billing questions. Look invoices up.",
    model="gpt-4o-mini",
    tools=[lookup_invoice],
)
triage = Agent(
    name="triage",
    instructions="Hand billing questions to the billing agent.",
    model="gpt-4o-mini",
    handoffs=[billing],
)
print(Runner.run_sync(triage, "Was invoice INV-1042 paid, and how much was it?").final_output)
