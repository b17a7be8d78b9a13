#!/bin/bash
# GPU work with no lease at all (no --gpu): nothing kept another run off that device.
$FAKE_CUDA --device 0 --mem 1GiB --util 50 --seconds 1.5
echo "done"
