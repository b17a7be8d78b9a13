#!/bin/bash
# Leased GPU 0, but the agent points its CUDA work at GPU 1 (another job's device) itself.
CUDA_VISIBLE_DEVICES=1 $FAKE_CUDA --device 0 --mem 1GiB --util 50 --seconds 1.5
echo "done"
