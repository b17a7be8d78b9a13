#!/bin/bash
# The agent removes the lease's lock file (it runs as the same user): another run could now take
# the device while this one works on it.
rm -f "$AGENTTRACE_GPU_LOCK_DIR"/*.lock
$FAKE_CUDA --device 0 --mem 1GiB --util 50 --seconds 1.5
echo "done"
