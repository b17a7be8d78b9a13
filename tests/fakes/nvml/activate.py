"""Put the fake library in the real pynvml, where pynvml would load `libnvidia-ml.so.1`."""

from __future__ import annotations

import os

from fakes.nvml.state import STATE_ENV


def activate() -> bool:
    """When $FAKE_NVML_STATE is set: this process's pynvml talks to the fake. Returns whether it does."""
    if not os.environ.get(STATE_ENV):
        return False
    import pynvml

    from fakes.nvml.libnvml import library

    with pynvml.libLoadLock:
        pynvml.nvmlLib = library()
        pynvml._nvmlGetFunctionPointer_cache.clear()
    return True


def deactivate() -> None:
    """Back to no library loaded (a later nvmlInit would look for the real one)."""
    import pynvml

    with pynvml.libLoadLock:
        pynvml.nvmlLib = None
        pynvml._nvmlGetFunctionPointer_cache.clear()
