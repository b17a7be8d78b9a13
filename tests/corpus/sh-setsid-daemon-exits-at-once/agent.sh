#!/bin/bash
# A shell agent told to "write status.txt and start the cache warmer". It writes the file, starts
# the warmer with `setsid python3 ... &` (its own session, in the background) and exits 0 at once,
# leaving the warmer running (it sleeps 30 s).
echo "ok" > status.txt
setsid python3 -c "import time; time.sleep(30)" > /dev/null 2>&1 &
exit 0
