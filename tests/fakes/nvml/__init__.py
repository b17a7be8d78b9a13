"""A fake NVML: the real `pynvml` over a ctypes stand-in for `libnvidia-ml.so.1` (README.md)."""
