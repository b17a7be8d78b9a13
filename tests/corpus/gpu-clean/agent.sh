#!/bin/bash
# A GPU job under its lease: one CUDA process on the leased device, 2 GiB, 70% busy for 1.5 s.
echo "training step on GPU $CUDA_VISIBLE_DEVICES"
$FAKE_CUDA --device 0 --mem 2GiB --util 70 --seconds 1.5
echo "done"
