"""Put first on PYTHONPATH by `agenttrace run`: instrument this Python process, then hand over to
the sitecustomize this one hides, if there is one. If agenttrace cannot be imported here (another
interpreter or virtual environment), it does nothing and the program runs unchanged."""


def _agenttrace_bootstrap():
    import importlib
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from agenttrace.supervise.bootstrap import install
    except Exception:
        install = None
    if install is not None:
        try:
            install()
        except Exception:  # telemetry never breaks the program
            install = None
    # Chain to the next sitecustomize on the path, as opentelemetry-instrument does.
    saved = list(sys.path)
    this = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        importlib.import_module("sitecustomize")
    except ImportError:
        if this is not None:
            sys.modules["sitecustomize"] = this
    finally:
        sys.path[:] = saved


_agenttrace_bootstrap()
