#!/bin/bash
# A shell agent told to "raise the timeout in app.conf to 30 and remove the stale lock file".
# Its checks exit non-zero and each is the answer it wanted: `cmp -s` exits 1 (the file changed),
# `diff` exits 1 (and shows the one changed line), `test -e` / `[` exit 1 (no lock file left).
echo "task: raise the timeout to 30, remove app.lock"
cp app.conf app.conf.orig
touch app.lock
sed -i 's/^timeout=5$/timeout=30/' app.conf
if cmp -s app.conf.orig app.conf; then echo "app.conf unchanged" >&2; exit 1; fi
diff -u app.conf.orig app.conf
rm -f app.lock
/usr/bin/test -e app.lock && { echo "app.lock still there" >&2; exit 1; }
/usr/bin/[ -e app.lock ] && { echo "app.lock still there" >&2; exit 1; }
rm app.conf.orig
grep -c '^timeout=30$' app.conf
echo "done: timeout=30, no lock file"
exit 0
