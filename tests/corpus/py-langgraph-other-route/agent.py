"""A LangGraph agent (ChatOpenAI) with two tools: `http_get` fetches a URL, `read_file` reads a
local file. The mirror is down, so http_get raises (URLError); the ToolNode (handle_tool_errors)
hands the error to the model, which reads the local copy instead and answers."""

import urllib.request
from pathlib import Path

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def http_get(url: str) -> str:
    """The body of a URL."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@tool
def read_file(path: str) -> str:
    """The text of a local file."""
    return Path(path).read_text()


tools = [http_get, read_file]
model = ChatOpenAI(model="gpt-4o-mini").bind_tools(tools)


def call_model(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


graph = StateGraph(MessagesState)
graph.add_node("model", call_model)
graph.add_node("tools", ToolNode(tools, handle_tool_errors=True))
graph.add_edge(START, "model")
graph.add_conditional_edges("model", tools_condition)
graph.add_edge("tools", "model")
task = "What is the latest release of the parser library? The release list is mirrored at http://127.0.0.1:9/"
final = graph.compile().invoke({"messages": [HumanMessage(task + " and kept in releases.txt.")]})
print(final["messages"][-1].content)
