#!/bin/bash
# A shell agent told to "fetch the dataset and report its row count". Its first fetch fails
# (exit 1), it waits and retries the same command, which succeeds; it does the work and exits 0.
echo "task: fetch dataset.csv and count its rows"
tries=0
until sh fetch.sh; do
  tries=$((tries + 1))
  [ "$tries" -ge 3 ] && { echo "giving up" >&2; exit 1; }
  echo "retrying in 0.2 s" >&2
  sleep 0.2
done
rows=$(tail -n +2 dataset.csv | wc -l)
echo "dataset.csv has $rows rows" | tee answer.txt
exit 0
