"""An agent that calls the model over raw HTTP (urllib, no SDK), so no instrumentor sees the call:
one request, and the answer is written to answer.md as it came. The answer was cut off
(finish_reason length), which the agent does not check."""

import json
import os
import urllib.request
from pathlib import Path

body = {
    "model": "gpt-4o-mini",
    "max_tokens": 12,
    "messages": [
        {"role": "system", "content": "Answer from the inventory below."},
        {"role": "user", "content": Path("inventory.md").read_text() + "\nWhat is in stock, in full?"},
    ],
}
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    data=json.dumps(body).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
)
with urllib.request.urlopen(request) as response:
    reply = json.load(response)
Path("answer.md").write_text(reply["choices"][0]["message"]["content"] + "\n")
print(reply["choices"][0]["message"]["content"])
