"""A LangGraph agent (ChatOpenAI) that looks alarming but is fine: it logs warnings (a deprecated
option, a cache that is cold), a Python DeprecationWarning, and its lint tool prints "ERROR"-looking
lines to stderr while exiting 0 (the linter's findings, which the model reports)."""

import logging
import subprocess
import warnings

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("reviewer")
warnings.simplefilter("always")


@tool
def lint(path: str) -> str:
    """Lint a shell script; returns the linter's findings."""
    done = subprocess.run(["bash", "lint.sh", path], capture_output=True, text=True, check=False)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


log.warning("option 'temperature' in reviewer.toml is deprecated; ignoring it")
warnings.warn("reviewer.legacy_mode will be removed in 2.0", DeprecationWarning, stacklevel=1)
log.warning("prompt cache is cold; the first call may be slow")
model = ChatOpenAI(model="gpt-4o-mini").bind_tools([lint])


def call_model(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


graph = StateGraph(MessagesState)
graph.add_node("model", call_model)
graph.add_node("tools", ToolNode([lint]))
graph.add_edge(START, "model")
graph.add_conditional_edges("model", tools_condition)
graph.add_edge("tools", "model")
final = graph.compile().invoke({"messages": [HumanMessage("Review deploy.sh and list the lint findings.")]})
log.warning("2 findings reported; not fixing them (review only)")
print(final["messages"][-1].content)
