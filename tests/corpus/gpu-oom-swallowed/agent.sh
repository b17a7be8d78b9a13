#!/bin/bash
# The batch does not fit: CUDA runs out of memory, and the agent shrugs it off and exits 0.
$FAKE_CUDA --device 0 --mem 500GiB --seconds 1 || echo "GPU was busy, results may be partial"
echo "done"
