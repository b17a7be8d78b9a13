#!/bin/bash
# A shell agent told to "summarise the January API logs into summary.txt: lines, ERROR lines
# and the slowest request per day, plus totals". It runs one small command after another (more
# than 40 processes), every one succeeds, and it exits 0 with the summary written.
set -e
echo "task: summarise logs/ into summary.txt"
mkdir -p out
ls logs > out/files.txt
wc -l out/files.txt
: > summary.txt
for f in $(cat out/files.txt); do
  day=$(basename "$f" .log)
  lines=$(wc -l < "logs/$f")
  errors=$(grep -c ERROR "logs/$f" || true)
  slowest=$(cut -d= -f3 "logs/$f" | sort -n | tail -n 1)
  echo "$day lines=$lines errors=$errors slowest_ms=$slowest" >> summary.txt
done
cat logs/*.log > out/all.log
total=$(wc -l < out/all.log)
errors=$(grep -c ERROR out/all.log)
echo "total lines=$total errors=$errors" >> summary.txt
sort -t= -k2 -n summary.txt | head -n 3
tr -s ' ' < summary.txt | cut -d' ' -f1-3 | uniq | md5sum
gzip -k out/all.log
ls -l out
rm -r out
cat summary.txt
echo "done: summary.txt"
