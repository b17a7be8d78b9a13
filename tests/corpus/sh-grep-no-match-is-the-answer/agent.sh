#!/bin/bash
# A shell agent told to "resolve every TODO in notes.txt". It resolves them, then checks with
# `grep -q TODO notes.txt`, which exits 1 ("no line matches"): that is the answer it wanted.
echo "task: resolve every TODO in notes.txt"
grep -n TODO notes.txt
sed -i 's/^TODO: mention the new config flag$/- new flag: --config-dir/' notes.txt
sed -i 's/^TODO: credit the contributors$/- thanks to our 14 contributors/' notes.txt
if grep -q TODO notes.txt; then
  echo "TODOs remain" >&2
  exit 1
fi
echo "no TODO left in notes.txt"
wc -l notes.txt
exit 0
