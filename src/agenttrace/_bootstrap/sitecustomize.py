"""Put first on PYTHONPATH by `agenttrace run`: instrument this Python process lazily, then hand over
to the sitecustomize this one hides, if there is one.

At start-up it only puts a finder first on `sys.meta_path`, keyed on a few module names, and
imports nothing (not agenttrace, not OpenTelemetry): a program that imports none of them pays one
dictionary look-up per module it imports. The first import of
- `subprocess` wraps `Popen.__init__` with a stub; the first process started sets up tracing
  (`agenttrace.supervise.bootstrap`: the OTel SDK, the exporter to the run's receiver) and from
  then on each process is a span;
- `http.client` wraps `HTTPConnection.putrequest` with a stub; the first request installs the
  model-API hook (`agenttrace.supervise.http_hook`), which sets up tracing at the first request
  that looks like a model call;
- `opentelemetry` (the program, or a library in it, uses the OTel API: its spans must go to the
  run) or a module of a library with a GenAI instrumentor (`AGENTTRACE_PYTHON_TRIGGERS`, handed
  down by the supervisor) sets up tracing and turns that library's instrumentor on.
If agenttrace cannot be imported here (another interpreter or virtual environment), it does
nothing and the program runs unchanged. Nothing here raises into the program.
"""


def _agenttrace_bootstrap():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.get("AGENTTRACE_RUN_ID") and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:  # noqa: SIM105 - contextlib is one import more in every process
            _install(sys, os.environ)
        except Exception:  # telemetry never breaks the program
            pass
    # Chain to the next sitecustomize on the path, as opentelemetry-instrument does.
    saved = list(sys.path)
    this = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        __import__("sitecustomize")
    except ImportError:
        if this is not None:
            sys.modules["sitecustomize"] = this
    finally:
        sys.path[:] = saved


def _install(sys, environ):
    if sys.version_info < (3, 11) or not _importable(sys, "agenttrace"):
        return  # not an interpreter with agenttrace: nothing to report to
    actions = {"subprocess": _on_subprocess, "http.client": _on_http_client, "opentelemetry": _on_genai}
    handed = environ.get("AGENTTRACE_PYTHON_TRIGGERS", "").rsplit("|", 2)
    if len(handed) == 3:  # prefix|its modules|the modules of any other interpreter
        modules = handed[1] if handed[0] == sys.prefix else handed[2]
    else:  # none handed down
        from agenttrace.supervise.instrumentors import all_triggers

        modules = ",".join(all_triggers())
    for module in modules.split(","):
        if module:
            actions.setdefault(module, _on_genai)
    finder = _Finder(actions)
    sys.meta_path.insert(0, finder)
    for name in [m for m in actions if m in sys.modules]:  # imported before us (a .pth file)
        finder.then(name)(sys.modules[name])


def _importable(sys, name):
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None and find(name, None) is not None:
            return True
    return False


class _Finder:
    """Finds nothing itself: for the first import of a module named in `actions`, the spec the
    rest of `sys.meta_path` finds, with a loader that runs the module's action once the module
    has run."""

    def __init__(self, actions):
        self.actions = actions

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.actions:
            return None
        import sys

        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        loader = spec.loader
        if loader is None and spec.submodule_search_locations is not None:
            # A namespace package (opentelemetry, langgraph): the loader the import system would give it
            from importlib.machinery import NamespaceLoader

            loader = NamespaceLoader.__new__(NamespaceLoader)
            loader._path = spec.submodule_search_locations
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        spec.loader = _ThenAct(loader, self.then(fullname))
        return spec

    def then(self, name):
        def act(module):
            action = self.actions.pop(name, None)  # once: atomic, so two threads never both act
            if action is not None:
                try:  # noqa: SIM105
                    action(name, module)
                except Exception:  # telemetry never breaks the program
                    pass

        return act


class _ThenAct:
    def __init__(self, inner, after):
        self.inner = inner
        self.after = after

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        self.after(module)

    def __getattr__(self, name):  # get_source, get_resource_reader, is_package, ...
        return getattr(self.inner, name)


def _on_genai(name, module):
    from agenttrace.supervise import bootstrap

    bootstrap.on_import(name)


def _on_subprocess(name, module):
    def trace():
        from agenttrace.supervise import bootstrap

        bootstrap.trace_subprocesses()

    _on_first_call(module.Popen, "__init__", trace)


def _on_http_client(name, module):  # (not yet an attribute of `http` while it is imported)
    def hook():
        from agenttrace.supervise import http_hook

        http_hook.install()

    _on_first_call(module.HTTPConnection, "putrequest", hook)


def _on_first_call(cls, name, then):
    """Replace `cls.name` with a stub that, at its first call (whoever calls it first, once), puts
    the method back, runs `then` (which may wrap it for real) and calls what is there now."""
    import threading

    original = cls.__dict__[name]
    lock = threading.Lock()

    def stub(self, *args, **kwargs):
        with lock:
            if cls.__dict__.get(name) is stub:
                setattr(cls, name, original)
                try:  # noqa: SIM105
                    then()
                except Exception:  # telemetry never breaks the program
                    pass
        return getattr(cls, name)(self, *args, **kwargs)

    stub._agenttrace_original = original
    setattr(cls, name, stub)


_agenttrace_bootstrap()
