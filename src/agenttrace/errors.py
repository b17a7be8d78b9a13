"""The one error hierarchy of agenttrace.

AgentTraceError                 anything agenttrace reports to a user (CLI: one `Error:` line, exit 2)
 ├── ConfigError (ValueError)   a bad setting, flag or environment variable
 ├── StoreError                 the store cannot be opened, read or written
 │    └── CorruptPartError      one stored part cannot be read (readers skip it with a warning)
 ├── RunNotFoundError           no run matches the given id or prefix
 ├── AmbiguousRunError          a prefix matches more than one run
 ├── QueryError                 a query is refused (not read-only) or fails
 ├── GpuError                   NVML is missing, a `--gpu` device is unknown, or a lease is held
 └── ReplayError                a run cannot be replayed (not recorded, fails integrity, an artifact changed)
"""

from __future__ import annotations


class AgentTraceError(Exception):
    """Base class: every error agenttrace raises on purpose derives from it."""


class ConfigError(AgentTraceError, ValueError):
    """A setting, flag or environment variable has a value agenttrace cannot use."""


class StoreError(AgentTraceError):
    """The store cannot be opened, read or written."""


class CorruptPartError(StoreError):
    """A Parquet part or spool segment cannot be read."""


class RunNotFoundError(AgentTraceError):
    """No run in the store matches the given id, prefix or `last`."""


class AmbiguousRunError(AgentTraceError):
    """A run prefix matches more than one run."""


class QueryError(AgentTraceError):
    """A query was refused or failed."""


class GpuError(AgentTraceError):
    """NVML cannot be used, a device asked for does not exist, or a GPU lease cannot be had."""


class ReplayError(AgentTraceError):
    """A run cannot be replayed: it was not recorded with `--record`, its records fail integrity,
    or a recorded body is missing or changed in the artifact store."""
