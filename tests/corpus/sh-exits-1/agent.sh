#!/bin/bash
# A shell agent told to "sum the amounts in sales-2026-02.csv". That file is not there (only
# January's is); the agent looks around, reports the problem and exits 1 without an answer.
echo "task: total the February sales"
ls -1
wc -l sales-2026-01.csv
if [ ! -f sales-2026-02.csv ]; then
  echo "error: sales-2026-02.csv not found; cannot total February" >&2
  exit 1
fi
tail -n +2 sales-2026-02.csv | cut -d, -f2 | paste -sd+ | bc
