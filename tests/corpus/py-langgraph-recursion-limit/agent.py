"""A LangGraph agent (ChatOpenAI) with a shell tool, run with recursion_limit=3: model, tools, model.
The model's second answer asks for another command, but the graph is out of steps: LangGraph raises
GraphRecursionError before the tool node runs; the program catches it, prints a note and exits 0."""

import subprocess

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.errors import GraphRecursionError
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def sh(cmd: str) -> str:
    """Run a shell command; returns its output."""
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


model = ChatOpenAI(model="gpt-4o-mini").bind_tools([sh])


def call_model(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


graph = StateGraph(MessagesState)
graph.add_node("model", call_model)
graph.add_node("tools", ToolNode([sh]))
graph.add_edge(START, "model")
graph.add_conditional_edges("model", tools_condition)
graph.add_edge("tools", "model")
task = {"messages": [HumanMessage("Bump the version in VERSION to the next patch release.")]}
try:
    final = graph.compile().invoke(task, {"recursion_limit": 3})
    print(final["messages"][-1].content)
except GraphRecursionError as exc:
    print(f"stopped: {exc}")
