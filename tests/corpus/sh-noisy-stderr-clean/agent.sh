#!/bin/bash
# A shell agent told to "sort data/items.csv by name into sorted.csv, archive the data folder and
# put the project under git". Every command succeeds, but many of them talk on stderr in words
# that look alarming: warnings, hints, "ERROR" inside a log line, a deprecation warning.
echo "task: sort items.csv, archive data/, init git"
sort --debug -t, -k1,1 data/items.csv > sorted.csv
python3 -W default -c 'import warnings; warnings.warn("pkg_resources is deprecated as an API", DeprecationWarning)'
python3 -c 'import sys; sys.stderr.write("WARNING: retrying connection (1/3): ERROR 503 from mirror, using cache\n")'
tar -cf data.tar "$PWD/data"
git init .
git -c user.name=agent -c user.email=agent@example.com add sorted.csv
git -c user.name=agent -c user.email=agent@example.com commit -q -m "sorted items"
cat sorted.csv
echo "done: sorted.csv written, data.tar archived, committed" >&2
exit 0
