"""A fake CUDA process:

    python tests/fakes/nvml/fake_cuda.py --device N --mem 512MiB [--util 60] [--seconds S]


It opens logical device N as CUDA would, through CUDA_VISIBLE_DEVICES (indices or UUIDs; unset = every
device; set but empty = none), registers itself in the fake NVML's state (so NVML lists it on that
device with --mem bytes and --util % busy), prints one `fake_cuda: ready ...` line, then holds the
device for --seconds (default: until killed). SIGTERM or SIGINT: it unregisters and dies of the signal.

Asking for more memory than is free takes what was free (the device is full), prints PyTorch's
`torch.OutOfMemoryError: CUDA out of memory. ...` to stderr, holds the full device for --seconds
(default 0) and exits 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

sys.path[:] = [str(Path(__file__).resolve().parents[2]), *sys.path[1:]]  # tests/, not this folder

from fakes.nvml import state as st  # noqa: E402

GiB = 1 << 30


class _Signalled(BaseException):
    def __init__(self, signum: int) -> None:
        self.signum = signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Signalled(signum)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", type=int, default=0, help="logical CUDA device (default 0)")
    parser.add_argument("--mem", type=st.parse_size, default=st.parse_size("512MiB"), help="memory to hold")
    parser.add_argument("--util", type=int, default=50, help="utilization added to the device, in %%")
    parser.add_argument(
        "--seconds", type=float, default=None, help="how long to hold it (default: until killed)"
    )
    parser.add_argument("--kind", choices=["compute", "graphics"], default="compute")
    args = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_signal)

    directory = os.environ.get(st.STATE_ENV)
    if not directory:
        print("RuntimeError: Found no NVIDIA driver on your system.", file=sys.stderr)
        return 1
    state = Path(directory)
    visible = st.visible_devices(st.read_devices(state), os.environ.get("CUDA_VISIBLE_DEVICES"))
    if not visible:
        print("RuntimeError: CUDA error: no CUDA-capable device is detected", file=sys.stderr)
        return 1
    if not 0 <= args.device < len(visible):
        print("RuntimeError: CUDA error: invalid device ordinal", file=sys.stderr)
        return 1
    device = visible[args.device]
    pid = os.getpid()
    start_time = st.process_start_time(pid)
    path = None
    try:
        with st.locked(state):
            free = device["memory_total"] - st.used_memory(st.ProcessTable(state).live(), device["uuid"])
            granted = max(0, min(args.mem, free))
            record = {"pid": pid, "start_time": start_time, "uuid": device["uuid"], "memory": granted}
            path = st.register(state, {**record, "util": args.util, "kind": args.kind})
        if granted < args.mem:
            print(_oom_message(args.device, args.mem, device["memory_total"], free, granted), file=sys.stderr)
            sys.stderr.flush()
            time.sleep(args.seconds or 0)
            return 1
        print(f"fake_cuda: ready pid={pid} device={device['uuid']} memory={granted}", flush=True)
        if args.seconds is None:
            while True:
                signal.pause()
        time.sleep(args.seconds)
        return 0
    except _Signalled as signalled:
        if path is not None:
            path.unlink(missing_ok=True)
            path = None
        signal.signal(signalled.signum, signal.SIG_DFL)
        os.kill(pid, signalled.signum)
        return 128 + signalled.signum  # not reached
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


def _oom_message(logical: int, asked: int, total: int, free: int, held: int) -> str:
    def gib(n: int) -> str:
        return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / (1 << 20):.2f} MiB"

    return (
        "Traceback (most recent call last):\n"
        '  File "fake_cuda.py", line 1, in <module>\n'
        f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {gib(asked)}. "
        f"GPU {logical} has a total capacity of {gib(total)} of which {gib(max(free, 0))} is free. "
        f"Including non-PyTorch memory, this process has {gib(held)} memory in use. "
        f"Of the allocated memory {gib(held)} is allocated by PyTorch, and 0 bytes is reserved by "
        "PyTorch but unallocated. If reserved but unallocated memory is large try setting "
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
        "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
    )


if __name__ == "__main__":
    sys.exit(main())
