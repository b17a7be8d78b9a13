#!/bin/bash
# A stand-in linter: prints its findings on stderr in the usual alarming shape, exits 0 (advisory mode).
echo "$1:3: ERROR SC2086: Double quote to prevent globbing and word splitting." >&2
echo "$1:5: WARNING SC2164: Use 'cd ... || exit' in case cd fails." >&2
echo "2 findings (advisory mode: exit 0)"
