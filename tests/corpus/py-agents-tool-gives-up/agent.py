"""An OpenAI Agents SDK agent (Responses API) with a database tool. The database file is corrupt, so
every query raises (sqlite3.DatabaseError); the SDK hands each error to the model, which tries twice
and then answers that it could not get the numbers. The program prints that and exits 0."""

import sqlite3

from agents import Agent, Runner, function_tool


@function_tool
def query(sql: str) -> str:
    """Run a read-only SQL query on orders.db; returns the rows as text."""
    with sqlite3.connect("file:orders.db?mode=ro", uri=True) as db:
        return "\n".join(str(row) for row in db.execute(sql).fetchall())


agent = Agent(name="analyst", instructions="Answer from orders.db.", model="gpt-4o-mini", tools=[query])
print(Runner.run_sync(agent, "How many orders were placed in November 2026?").final_output)
