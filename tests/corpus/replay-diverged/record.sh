#!/usr/bin/env bash
# Records tests/corpus/replay-same and tests/corpus/replay-diverged; run from the repository root:
#   bash tests/corpus/replay-diverged/record.sh
# The agent is examples/research_agent.py with its fake model server, as copied into examples/ here.
# One run of it is recorded with --record against the fake model server (run corpus-replay-original);
# then, in a copy of that store each, it is replayed with the model gone: once as recorded
# (corpus-replay-same), once with the task reworded (corpus-replay-diverged).
set -euo pipefail
repo=$PWD
bin=$repo/.venv/bin
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/examples"
cp tests/corpus/replay-diverged/examples/*.py "$work/examples/"
cd "$work"
port=$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin/python" examples/fake_model_server.py --port "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export AGENTTRACE_FLUSH_INTERVAL=0.1 OPENAI_API_KEY=sk-corpus-0123456789abcdefghijklmnop
agent=("$bin/python" examples/research_agent.py --report answer.md)
OPENAI_BASE_URL="http://127.0.0.1:$port/v1" "$bin/agenttrace" run --store original --run-id corpus-replay-original \
    --record -- "${agent[@]}"
kill $server
rm answer.md
cp -a original same
OPENAI_BASE_URL=http://127.0.0.1:9/v1 "$bin/agenttrace" replay corpus-replay-original --store same \
    --run-id corpus-replay-same -- "${agent[@]}" || true
rm -f answer.md
cp -a original diverged
OPENAI_BASE_URL=http://127.0.0.1:9/v1 "$bin/agenttrace" replay corpus-replay-original --store diverged \
    --run-id corpus-replay-diverged -- "${agent[@]}" \
    --task "Find the sample agent among the files in the examples directory and tell me how many lines it has." || true
for case in same diverged; do
    rm -rf "$repo/tests/corpus/replay-$case/store"
    mkdir -p "$repo/tests/corpus/replay-$case"
    cp -a "$case" "$repo/tests/corpus/replay-$case/store"
    rm -rf "$repo/tests/corpus/replay-$case/store/derived"
done
