"""pytest glue for the Janus end-to-end tests.

Why the re-exec: Janus 1.1.2 gathers no ICE candidates on loopback, so the
tests need a non-loopback interface that cannot reach anything else.
``netns-run.sh`` builds a throw-away network namespace with a veth pair for
that.  The pytest process itself hosts the aiortc peers and talks to Janus on
127.0.0.1 *inside* the namespace, so the whole pytest process must run in it.
When this conftest is loaded outside a harness namespace (and we are root), it
re-executes the original command line through netns-run.sh -- so plain
``python3 -m pytest test/e2e`` just works.

Environment knobs:
  JANUS_E2E_NO_NETNS=1     never re-exec (you provide JANUS_E2E_ADDR_A/B yourself)
  AUDIOROOM_PLUGIN=path    our libjanus_audioroom.so (fixture audioroom_plugin_path)
  JANUS_E2E_DEBUG_LEVEL=N  default Janus debug level for janus_factory (4)
  JANUS_E2E_LOG_TAIL=N     Janus log lines attached to failure reports (80)
  JANUS_E2E_KEEP=1         keep every Janus temp dir (they are kept on failure anyway)

Also provided: ``async def`` tests run natively (no pytest-asyncio needed),
each in a fresh event loop with a timeout (``@pytest.mark.async_timeout(s)``,
default 120 s); TonePeers left open by a test are closed afterwards.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# The plugin under test: its fixtures live beside this harness.
pytest_plugins = ["audioroom_fixtures"]
NETNS_RUN = HERE / "netns-run.sh"
STOCK_PLUGINS_DIR = Path(os.environ.get("JANUS_PLUGINS_DIR", "/usr/lib/x86_64-linux-gnu/janus/plugins"))
DEFAULT_ASYNC_TIMEOUT = 120.0


# --------------------------------------------------------------- netns logic
def _inside_harness_netns() -> bool:
    """True if netns-run.sh started us and we are really in its namespace."""
    name = os.environ.get("JANUS_E2E_NETNS")
    if not name:
        return False
    try:
        out = subprocess.run(["ip", "netns", "identify", str(os.getpid())],
                             capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return False
    return name in out


def _netns_status() -> tuple[bool, str]:
    """(usable, reason-if-not)."""
    if _inside_harness_netns():
        return True, ""
    if os.environ.get("JANUS_E2E_NO_NETNS", "") not in ("", "0"):
        if os.environ.get("JANUS_E2E_ADDR_A") and os.environ.get("JANUS_E2E_ADDR_B"):
            return True, ""
        return False, "JANUS_E2E_NO_NETNS is set but JANUS_E2E_ADDR_A/B are not"
    if os.geteuid() != 0:
        return False, "e2e WebRTC tests need root to create a network namespace (run as root)"
    if shutil.which("ip") is None:
        return False, "iproute2 ('ip') is not installed"
    return False, "not inside a harness network namespace"


def _reexec_in_netns(config: pytest.Config) -> None:
    """Replace this pytest process by the same command run via netns-run.sh."""
    if os.environ.get("_JANUS_E2E_REEXEC"):
        raise pytest.UsageError(
            "conftest.py re-executed pytest through netns-run.sh but is still not inside the "
            "harness namespace (JANUS_E2E_NETNS / 'ip netns identify' mismatch)")
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()   # give the new process the real stdout/stderr
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ["_JANUS_E2E_REEXEC"] = "1"
    bash = shutil.which("bash") or "/bin/bash"
    argv = [bash, str(NETNS_RUN), sys.executable, *sys.orig_argv[1:]]
    os.execv(bash, argv)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "async_timeout(seconds): timeout for an async def test")
    usable, _ = _netns_status()
    if usable:
        return
    can_reexec = (os.geteuid() == 0 and shutil.which("ip") is not None
                  and os.environ.get("JANUS_E2E_NO_NETNS", "") in ("", "0"))
    if can_reexec and not getattr(config.option, "collectonly", False) \
            and not getattr(config.option, "help", False):
        _reexec_in_netns(config)


# ------------------------------------------------------------ async support
@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Run ``async def`` tests in a fresh event loop, with a timeout; close
    any TonePeer the test left open before the loop goes away."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("async_timeout")
    timeout = float(marker.args[0]) if marker else DEFAULT_ASYNC_TIMEOUT
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def runner():
        try:
            await asyncio.wait_for(pyfuncitem.obj(**kwargs), timeout)
        except asyncio.TimeoutError as e:
            raise TimeoutError(f"async test exceeded its {timeout:g}s timeout "
                               "(@pytest.mark.async_timeout)") from e
        finally:
            if "harness.peer" in sys.modules:
                await sys.modules["harness.peer"].close_all_peers()

    asyncio.run(runner())
    return True


# ---------------------------------------------------------- failure reports
_REPORTS = pytest.StashKey[dict]()
_SERVERS = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Remember each phase's report (fixtures look at it) and attach the tail
    of every Janus log to failing reports."""
    outcome = yield
    rep = outcome.get_result()
    item.stash.setdefault(_REPORTS, {})[rep.when] = rep
    if rep.failed and rep.when in ("setup", "call"):
        lines = int(os.environ.get("JANUS_E2E_LOG_TAIL", "80"))
        for srv in item.stash.get(_SERVERS, []):
            rep.sections.append((f"Janus log tail ({srv.workdir})", srv.log_tail(lines)))


def _test_failed(request: pytest.FixtureRequest) -> bool:
    reps = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reps.values())


# ------------------------------------------------------------------ fixtures
@dataclass(frozen=True)
class E2ENet:
    """Addresses inside the harness namespace."""

    netns: str | None    # namespace name (None with JANUS_E2E_NO_NETNS)
    janus_addr: str      # Janus gathers ICE candidates here (JANUS_E2E_ADDR_A)
    peer_addr: str       # aiortc peers gather here (JANUS_E2E_ADDR_B)


@pytest.fixture(scope="session")
def e2e_net() -> E2ENet:
    """The harness network; skips the test if we cannot be inside one."""
    usable, reason = _netns_status()
    if not usable:
        pytest.skip(f"e2e network unavailable: {reason}")
    return E2ENet(os.environ.get("JANUS_E2E_NETNS"), os.environ["JANUS_E2E_ADDR_A"],
                  os.environ["JANUS_E2E_ADDR_B"])


@pytest.fixture
def janus_factory(request: pytest.FixtureRequest, e2e_net: E2ENet):
    """Start private Janus instances; all are stopped at the end of the test.

    ``janus_factory(plugins=[path.so, ...], plugin_configs={"janus.plugin.x.jcfg": text},
    check_exit=True, **JanusServer_kwargs) -> JanusServer`` (already started).

    With ``check_exit`` the teardown fails the test if Janus died during the
    test (crash) or did not exit cleanly (code 0) on SIGTERM.  Tests that stop
    or kill Janus themselves should pass ``check_exit=False``.  On failure the
    log tail is attached to the report and the temp dir is kept.
    """
    from harness.janus import JanusServer, JanusStopTimeout

    started: list[tuple[JanusServer, bool]] = []
    request.node.stash[_SERVERS] = []

    def factory(plugins=(), plugin_configs=None, *, check_exit: bool = True, **kwargs) -> JanusServer:
        kwargs.setdefault("ice_address", e2e_net.janus_addr)
        kwargs.setdefault("debug_level", int(os.environ.get("JANUS_E2E_DEBUG_LEVEL", "4")))
        srv = JanusServer(plugins, plugin_configs, **kwargs)
        request.node.stash[_SERVERS].append(srv)
        srv.start()
        started.append((srv, check_exit))
        return srv

    yield factory

    problems = []
    for srv, check_exit in reversed(started):
        was_alive = srv.alive()
        try:
            code = srv.stop(timeout=15)
        except JanusStopTimeout as e:
            problems.append(str(e))
            code = srv.returncode
        if check_exit and not was_alive:
            problems.append(f"Janus died during the test (exit code {code}); "
                            f"workdir {srv.workdir}\n{srv.log_tail(60)}")
        elif check_exit and code not in (0, None):
            problems.append(f"Janus exited with code {code} on SIGTERM; workdir {srv.workdir}\n"
                            f"{srv.log_tail(60)}")
    keep = bool(problems) or _test_failed(request)
    for srv, _ in started:
        if keep:
            srv.keep_workdir = True
        srv.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def janus_session_factory(janus_factory):
    """``janus_session_factory(server_or_url) -> JanusSession``; every session
    is destroyed at the end of the test (before the Janus servers stop)."""
    from harness.client import JanusSession

    sessions: list[JanusSession] = []

    def factory(target, **kwargs) -> JanusSession:
        url = target if isinstance(target, str) else target.url
        s = JanusSession(url, **kwargs)
        sessions.append(s)
        return s

    yield factory
    for s in sessions:
        s.destroy()


@pytest.fixture(scope="session")
def stock_plugin_path():
    """``stock_plugin_path("audiobridge") -> Path`` of a Debian-packaged plugin."""
    def get(name: str) -> Path:
        p = STOCK_PLUGINS_DIR / f"libjanus_{name}.so"
        if not p.exists():
            pytest.skip(f"stock Janus plugin not installed: {p}")
        return p
    return get


@pytest.fixture(scope="session")
def audioroom_plugin_path() -> Path:
    """Path of our libjanus_audioroom.so from $AUDIOROOM_PLUGIN; skips if unset/missing."""
    value = os.environ.get("AUDIOROOM_PLUGIN")
    if not value:
        pytest.skip("AUDIOROOM_PLUGIN is not set: export AUDIOROOM_PLUGIN=/path/to/libjanus_audioroom.so")
    p = Path(value).expanduser().resolve()
    if not p.is_file():
        pytest.skip(f"AUDIOROOM_PLUGIN={value} does not exist (build the plugin first)")
    return p
