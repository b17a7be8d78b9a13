// A small Node.js agent loop with no dependencies: it asks an OpenAI-compatible model
// (OPENAI_BASE_URL) what to do, runs the tools it asks for (read_file, run), and reports its own
// OpenTelemetry spans (GenAI semantic conventions) as OTLP/JSON to OTEL_EXPORTER_OTLP_ENDPOINT,
// under the TRACEPARENT it was given. It stops after MAX_TURNS model calls (default 6).
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const { execSync } = require("node:child_process");

const MODEL = "gpt-4o-mini";
const MAX_TURNS = Number(process.env.MAX_TURNS || 6);
const [, traceId, rootParent] = (process.env.TRACEPARENT || "").split("-");
const endpoint = (process.env.OTEL_EXPORTER_OTLP_ENDPOINT || "").replace(/\/$/, "");

const nowNs = () => (BigInt(Date.now()) * 1000000n + process.hrtime.bigint() % 1000000n).toString();
const newId = () => crypto.randomBytes(8).toString("hex");
function value(v) {
  if (Array.isArray(v)) return { arrayValue: { values: v.map(value) } };
  if (typeof v === "number") return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  return { stringValue: String(v) };
}
async function send(span) {
  const attributes = Object.entries(span.attributes).map(([key, v]) => ({ key, value: value(v) }));
  const body = {
    resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "node-agent" } }] },
      scopeSpans: [{
        scope: { name: "node-agent", version: "0.1.0" },
        spans: [{ ...span, traceId, attributes, status: span.status || { code: 1 } }],
      }],
    }],
  };
  const res = await fetch(`${endpoint}/v1/traces`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!res.ok) console.error(`otlp export: HTTP ${res.status}`);
}
function start(name, parentSpanId, kind, attributes) {
  return { spanId: newId(), parentSpanId, name, kind, startTimeUnixNano: nowNs(), attributes };
}
async function end(span, status) {
  span.endTimeUnixNano = nowNs();
  if (status) span.status = status;
  await send(span);
}

const tools = [
  { type: "function", function: { name: "read_file", description: "Read a text file.",
    parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } } },
  { type: "function", function: { name: "run", description: "Run a shell command.",
    parameters: { type: "object", properties: { cmd: { type: "string" } }, required: ["cmd"] } } },
];

function runTool(name, args, span) {
  if (name === "read_file") return fs.readFileSync(args.path, "utf8");
  // the command carries the tool span's trace context, so its process is drawn under the span
  const env = { ...process.env, TRACEPARENT: `00-${traceId}-${span.spanId}-01` };
  return execSync(args.cmd, { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] });
}

async function main() {
  const task = process.argv[2] || "Summarise notes.txt in one sentence.";
  const agent = start("invoke_agent node-agent", rootParent, 1, {
    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "node-agent",
  });
  const messages = [{ role: "system", content: "You are a careful assistant." }, { role: "user", content: task }];
  let answer = null;
  let message = null;
  for (let turn = 0; turn < MAX_TURNS; turn++) {
    const chat = start(`chat ${MODEL}`, agent.spanId, 3, {
      "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": MODEL,
      "gen_ai.input.messages": JSON.stringify(messages),
    });
    const res = await fetch(`${process.env.OPENAI_BASE_URL}/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${process.env.OPENAI_API_KEY}` },
      body: JSON.stringify({ model: MODEL, messages, tools }),
    });
    const reply = await res.json();
    if (!res.ok) {
      chat.attributes["error.type"] = String(res.status);
      await end(chat, { code: 2, message: reply.error?.message || `HTTP ${res.status}` });
      throw new Error(`model: HTTP ${res.status}`);
    }
    const choice = reply.choices[0];
    message = choice.message;
    Object.assign(chat.attributes, {
      "gen_ai.response.model": reply.model, "gen_ai.response.id": reply.id,
      "gen_ai.response.finish_reasons": [choice.finish_reason],
      "gen_ai.usage.input_tokens": reply.usage.prompt_tokens,
      "gen_ai.usage.output_tokens": reply.usage.completion_tokens,
      "gen_ai.output.messages": JSON.stringify([{ role: "assistant", content: message.content,
        tool_calls: message.tool_calls || [], finish_reason: choice.finish_reason }]),
    });
    await end(chat);
    messages.push({ role: "assistant", content: message.content, ...(message.tool_calls ? { tool_calls: message.tool_calls } : {}) });
    if (!message.tool_calls) {
      answer = message.content;
      break;
    }
    if (turn + 1 >= MAX_TURNS) break; // the loop limit: the calls just asked for are not made
    for (const call of message.tool_calls) {
      const args = JSON.parse(call.function.arguments);
      const tool = start(`execute_tool ${call.function.name}`, agent.spanId, 1, {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call.function.name,
        "gen_ai.tool.call.id": call.id, "gen_ai.tool.call.arguments": call.function.arguments,
      });
      let output;
      let status;
      try {
        output = runTool(call.function.name, args, tool);
      } catch (err) {
        output = `error: ${err.message}`;
        status = { code: 2, message: err.message.split("\n")[0] };
      }
      tool.attributes["gen_ai.tool.call.result"] = output.slice(0, 2000);
      await end(tool, status);
      messages.push({ role: "tool", tool_call_id: call.id, content: output });
    }
  }
  await end(agent);
  console.log(answer ?? `(no answer after ${MAX_TURNS} model calls; last reply: ${message?.content ?? ""})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
