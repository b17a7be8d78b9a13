"""Two agents in one LangGraph graph (ChatOpenAI): a researcher with a file tool gathers the facts,
then hands its notes to a writer, which writes report.md. The objective names the report and what
it must cover."""

from pathlib import Path

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def read_file(path: str) -> str:
    """The text of a file."""
    return Path(path).read_text()


researcher_model = ChatOpenAI(model="gpt-4o-mini").bind_tools([read_file])
writer_model = ChatOpenAI(model="gpt-4o-mini")


def researcher(state: MessagesState) -> dict:
    system = SystemMessage("You are the researcher: gather the facts with read_file, then summarise them.")
    return {"messages": [researcher_model.invoke([system, *state["messages"]])]}


def writer(state: MessagesState) -> dict:
    system = SystemMessage("You are the writer: turn the researcher's notes into a short Markdown report.")
    reply = writer_model.invoke([system, HumanMessage(state["messages"][-1].content)])
    Path("report.md").write_text(reply.content + "\n")
    return {"messages": [reply]}


def route(state: MessagesState) -> str:
    return "tools" if tools_condition(state) == "tools" else "writer"


graph = StateGraph(MessagesState)
graph.add_node("researcher", researcher)
graph.add_node("tools", ToolNode([read_file]))
graph.add_node("writer", writer)
graph.add_edge(START, "researcher")
graph.add_conditional_edges("researcher", route, ["tools", "writer"])
graph.add_edge("tools", "researcher")
graph.add_edge("writer", END)
graph.compile().invoke({"messages": [HumanMessage("Report on last week's incidents: causes and durations.")]})
print(Path("report.md").read_text())
