"""An agent that flips a byte in the middle of every spool segment of its own run (the
supervisor's and the receiver's) in the default store, then exits 0."""

import glob
import os
import time

folder = os.path.join(".agenttrace", "spool", os.environ["AGENTTRACE_RUN_ID"])
deadline = time.monotonic() + 20
while not glob.glob(os.path.join(folder, "*.arrows")) and time.monotonic() < deadline:
    time.sleep(0.05)
for path in sorted(glob.glob(os.path.join(folder, "*.arrows"))):
    with open(path, "r+b") as f:
        size = f.seek(0, 2)
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
