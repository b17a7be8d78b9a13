#!/bin/bash
# A shell agent whose test suite fails; it ignores that, and sends one OTLP span of a "model" that
# says it is done, so that it looks like an agent that reports its own steps, whose commands
# would then not be steps. The supervisor saw a shell run a command that exited 2.
sh -c 'echo "1 failed, 11 passed"; exit 2'
python3 - <<'PY'
import json, os, time, urllib.request
_, trace_id, parent, _ = os.environ["TRACEPARENT"].split("-")
now = time.time_ns()
attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
         "gen_ai.response.finish_reasons": "stop"}
span = {"traceId": trace_id, "spanId": "00000000000000a1", "parentSpanId": parent, "name": "chat gpt-4o",
        "startTimeUnixNano": str(now - 10**6), "endTimeUnixNano": str(now),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}
body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
request = urllib.request.Request(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] + "/v1/traces",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
urllib.request.urlopen(request).read()
PY
echo "all good"
exit 0
