"""GPU work as a production job: NVML devices and samples (`nvml`, `sampler`), host-wide device
leases (`lease`), for the `gpu_guard` gate and `agenttrace gpus`."""
