"""Start and stop a private, throw-away Janus instance for one test.

Why: tests must never depend on (or disturb) the system's /etc/janus setup,
and each test wants exactly the plugins it exercises.  ``JanusServer`` writes
a complete private configuration into a temporary directory:

    <tmp>/conf/janus.jcfg                    core config (folders, log, nat, media)
    <tmp>/conf/janus.transport.http.jcfg     HTTP API + Admin API on 127.0.0.1
    <tmp>/conf/<plugin config>.jcfg          one per entry of ``plugin_configs``
    <tmp>/plugins/<lib>.so  -> symlink      only the plugins we were given
    <tmp>/transports/libjanus_http.so -> symlink   only the HTTP transport
                                            (+ libjanus_websockets.so with websockets=True)
    <tmp>/conf/janus.transport.websockets.jcfg  only with websockets=True (ws on 127.0.0.1)
    <tmp>/events/<lib>.so -> symlink        only the event handlers we were given (their
                                            configs come as ``plugin_configs``); none by default
    <tmp>/loggers/                          empty: no loggers
    <tmp>/janus.log                         Janus's own log (log_to_file)
    <tmp>/stdout.log                        Janus's stdout/stderr (crash output)

Because the private plugin/transport folders only contain what we want, no
``disable = ...`` lists are needed.

Janus 1.1.2 specifics handled here:

* ``-C <file>`` selects the core config file and ``-F <dir>`` the folder the
  plugins/transports read their ``<package>.jcfg`` from (``janus --help``);
  ``configs_folder`` in janus.jcfg says the same.
* ``admin_secret`` lives in janus.jcfg ``general``, not in the HTTP transport
  config; the transport only enables/binds the admin listener.
* The HTTP listeners are bound with ``ip``/``admin_ip`` = 127.0.0.1.
* ``general.interface`` is set to the ICE address; otherwise Janus logs
  "Couldn't find any address! using 127.0.0.1 as the local IP" in a namespace
  without a default route (harmless, but it also lands in the SDP c= line).
* libnice gathers no candidates on loopback, hence ``nat.ice_enforce_list``
  must name a non-loopback address (the veth end created by netns-run.sh).
* Readiness is detected by polling ``GET /janus/info`` until it answers
  ``{"janus": "server_info"}``; the port is bound only after all plugins
  have been initialised, so "info answers" means "plugins loaded".
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal as _signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping

DEFAULT_JANUS_BINARY = os.environ.get("JANUS_BINARY", "janus")
DEFAULT_TRANSPORTS_DIR = os.environ.get(
    "JANUS_TRANSPORTS_DIR", "/usr/lib/x86_64-linux-gnu/janus/transports"
)
STOCK_PLUGINS_DIR = os.environ.get(
    "JANUS_PLUGINS_DIR", "/usr/lib/x86_64-linux-gnu/janus/plugins"
)


class JanusStartupError(RuntimeError):
    """Janus did not come up; the message contains the tail of its log."""


class JanusStopTimeout(RuntimeError):
    """Janus did not exit in time after a stop signal (it has been killed)."""


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _q(value: str) -> str:
    """Quote a string for libconfig (.jcfg)."""
    return json.dumps(str(value))


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


class JanusServer:
    """One private Janus process.

    Parameters
    ----------
    plugins:
        paths of plugin ``.so`` files to load (symlinked into a private
        plugins folder; the link keeps the file's base name).
    plugin_configs:
        ``{config file name: text}`` written into the private configs folder,
        e.g. ``{"janus.plugin.audiobridge.jcfg": "general: {}\\n"}``.  A name
        without an extension gets ``.jcfg`` appended.
    ice_address:
        the only address Janus gathers ICE candidates on (``nat.ice_enforce_list``
        and ``general.interface``).  Defaults to ``$JANUS_E2E_ADDR_A``.
    debug_level:
        Janus debug level 0..7 (4 = info, 5 = verb, 7 = huge).
    rtp_port_range:
        e.g. ``"20000-20999"``; ``None`` leaves Janus's default.
    extra_general / extra_media / extra_nat:
        additional ``key: value`` items for those janus.jcfg sections (values
        are written verbatim if they are bool/int, quoted otherwise).
    websockets:
        also load Janus's WebSocket transport (janus.js's usual transport),
        listening on 127.0.0.1 at a free port: ``.ws_url``.
    event_handlers:
        paths of event handler ``.so`` files (e.g. Debian's ``libjanus_mqttevh.so``) to
        load; with any, janus.jcfg says ``events: { broadcast = true }``.  Their
        configuration files (``janus.eventhandler.<name>.jcfg``) go in ``plugin_configs``.
    wrapper:
        a command Janus runs under, e.g. ``["valgrind", "--tool=memcheck", ...]``.
    startup_timeout:
        seconds to wait for the HTTP API (and the WebSocket port) to answer.
    workdir:
        directory to use instead of a fresh temp dir (kept after stop()).
    keep_workdir:
        do not delete the temp dir in ``cleanup()`` (for post-mortems);
        also enabled by ``JANUS_E2E_KEEP=1``.

    Use ``start()`` (or a ``with`` block); then ``.url``, ``.admin_url``,
    ``.admin_secret``; finally ``stop()``.
    """

    def __init__(
        self,
        plugins: Iterable[str | os.PathLike] = (),
        plugin_configs: Mapping[str, str] | None = None,
        *,
        ice_address: str | None = None,
        debug_level: int = 4,
        rtp_port_range: str | None = None,
        extra_general: Mapping[str, object] | None = None,
        extra_media: Mapping[str, object] | None = None,
        extra_nat: Mapping[str, object] | None = None,
        session_timeout: int = 60,
        websockets: bool = False,
        event_handlers: Iterable[str | os.PathLike] = (),
        janus_binary: str = DEFAULT_JANUS_BINARY,
        wrapper: Iterable[str] = (),
        transports_dir: str | os.PathLike = DEFAULT_TRANSPORTS_DIR,
        startup_timeout: float = 20.0,
        workdir: str | os.PathLike | None = None,
        keep_workdir: bool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.plugins = [Path(p) for p in plugins]
        self.plugin_configs = dict(plugin_configs or {})
        self.ice_address = ice_address or os.environ.get("JANUS_E2E_ADDR_A")
        self.debug_level = int(debug_level)
        self.rtp_port_range = rtp_port_range
        self.extra_general = dict(extra_general or {})
        self.extra_media = dict(extra_media or {})
        self.extra_nat = dict(extra_nat or {})
        self.session_timeout = int(session_timeout)
        self.websockets = bool(websockets)
        self.event_handlers = [Path(p) for p in event_handlers]
        self.janus_binary = janus_binary
        self.wrapper = list(wrapper)
        self.transports_dir = Path(transports_dir)
        self.startup_timeout = float(startup_timeout)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="janus-e2e-"))
        if keep_workdir is None:
            keep_workdir = os.environ.get("JANUS_E2E_KEEP", "") not in ("", "0")
        self.keep_workdir = keep_workdir
        self.env = dict(env) if env is not None else None

        self.admin_secret = secrets.token_hex(12)
        self.port: int | None = None
        self.admin_port: int | None = None
        self.ws_port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.info: dict = {}          # GET /info reply once started
        self._stdout_file = None

        self.conf_dir = self.workdir / "conf"
        self.plugins_dir = self.workdir / "plugins"
        self.events_dir = self.workdir / "events"
        self.transports_priv_dir = self.workdir / "transports"
        self.log_path = self.workdir / "janus.log"
        self.stdout_path = self.workdir / "stdout.log"

    # ------------------------------------------------------------------ config
    @property
    def url(self) -> str:
        """Base URL of the Janus HTTP API, e.g. ``http://127.0.0.1:PORT/janus``."""
        return f"http://127.0.0.1:{self.port}/janus"

    @property
    def admin_url(self) -> str:
        """Base URL of the Admin API, e.g. ``http://127.0.0.1:PORT/admin``."""
        return f"http://127.0.0.1:{self.admin_port}/admin"

    @property
    def ws_url(self) -> str:
        """WebSocket API URL (``websockets=True`` only), e.g. ``ws://127.0.0.1:PORT``."""
        if not self.websockets:
            raise RuntimeError("this JanusServer was started without websockets=True")
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def janus_config_path(self) -> Path:
        return self.conf_dir / "janus.jcfg"

    @staticmethod
    def _items(d: Mapping[str, object], indent: str = "\t") -> str:
        out = []
        for k, v in d.items():
            if isinstance(v, bool):
                val = "true" if v else "false"
            elif isinstance(v, (int, float)):
                val = str(v)
            else:
                val = _q(v)
            out.append(f"{indent}{k} = {val}")
        return "\n".join(out)

    def _write_config(self) -> None:
        for d in (self.conf_dir, self.plugins_dir, self.transports_priv_dir,
                  self.events_dir, self.workdir / "loggers"):
            d.mkdir(parents=True, exist_ok=True)

        general = {
            "configs_folder": str(self.conf_dir),
            "plugins_folder": str(self.plugins_dir),
            "transports_folder": str(self.transports_priv_dir),
            "events_folder": str(self.events_dir),
            "loggers_folder": str(self.workdir / "loggers"),
            "debug_level": self.debug_level,
            "debug_timestamps": True,
            "debug_colors": False,
            "log_to_stdout": False,
            "log_to_file": str(self.log_path),
            "admin_secret": self.admin_secret,
            "session_timeout": self.session_timeout,
            "server_name": "janus-e2e",
        }
        if self.ice_address:
            general["interface"] = self.ice_address
        general.update(self.extra_general)
        media: dict[str, object] = {}
        if self.rtp_port_range:
            media["rtp_port_range"] = self.rtp_port_range
        media.update(self.extra_media)
        nat: dict[str, object] = {"nice_debug": False}
        if self.ice_address:
            nat["ice_enforce_list"] = self.ice_address
        nat.update(self.extra_nat)

        self.janus_config_path.write_text(
            "# Generated by test/e2e/harness/janus.py -- private to one test run\n"
            f"general: {{\n{self._items(general)}\n}}\n"
            "certificates: {\n}\n"
            f"media: {{\n{self._items(media)}\n}}\n"
            f"nat: {{\n{self._items(nat)}\n}}\n"
            "plugins: {\n}\ntransports: {\n}\nloggers: {\n}\n"
            + ("events: {\n\tbroadcast = true\n}\n" if self.event_handlers else "events: {\n}\n")
        )
        (self.conf_dir / "janus.transport.http.jcfg").write_text(
            "# Generated by test/e2e/harness/janus.py\n"
            "general: {\n"
            '\tjson = "plain"\n'
            '\tbase_path = "/janus"\n'
            "\thttp = true\n"
            f"\tport = {self.port}\n"
            '\tip = "127.0.0.1"\n'
            "\thttps = false\n"
            "}\n"
            "admin: {\n"
            '\tadmin_base_path = "/admin"\n'
            "\tadmin_http = true\n"
            f"\tadmin_port = {self.admin_port}\n"
            '\tadmin_ip = "127.0.0.1"\n'
            "\tadmin_https = false\n"
            "}\n"
            "cors: {\n}\n"
        )
        if self.websockets:
            (self.conf_dir / "janus.transport.websockets.jcfg").write_text(
                "# Generated by test/e2e/harness/janus.py\n"
                "general: {\n"
                '\tjson = "plain"\n'
                "\tws = true\n"
                f"\tws_port = {self.ws_port}\n"
                '\tws_ip = "127.0.0.1"\n'
                "\twss = false\n"
                "}\n"
                "admin: {\n\tadmin_ws = false\n\tadmin_wss = false\n}\n"
                "cors: {\n}\n"
            )
        for name, text in self.plugin_configs.items():
            fname = name if name.endswith((".jcfg", ".cfg")) else f"{name}.jcfg"
            (self.conf_dir / fname).write_text(text)

        for d in (self.plugins_dir, self.transports_priv_dir, self.events_dir):
            for old in d.iterdir():
                old.unlink()
        for p in self.event_handlers:
            if not p.exists():
                raise FileNotFoundError(f"event handler library not found: {p}")
            (self.events_dir / p.name).symlink_to(p.resolve())
        for p in self.plugins:
            if not p.exists():
                raise FileNotFoundError(f"plugin library not found: {p}")
            (self.plugins_dir / p.name).symlink_to(p.resolve())
        http = self.transports_dir / "libjanus_http.so"
        if not http.exists():
            raise FileNotFoundError(f"HTTP transport not found: {http}")
        (self.transports_priv_dir / "libjanus_http.so").symlink_to(http.resolve())
        if self.websockets:
            ws = self.transports_dir / "libjanus_websockets.so"
            if not ws.exists():
                raise FileNotFoundError(f"WebSocket transport not found: {ws}")
            (self.transports_priv_dir / "libjanus_websockets.so").symlink_to(ws.resolve())

    # ------------------------------------------------------------------- logs
    def log_text(self) -> str:
        """Janus's log file (empty string if not written yet)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self) -> str:
        """What Janus printed on stdout/stderr (banner, glib/ASAN crash output)."""
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        """Last ``lines`` of the log plus the tail of stdout/stderr, for reports."""
        out = f"--- janus.log (last {lines} lines; full: {self.log_path}) ---\n"
        out += _tail(self.log_text(), lines)
        extra = _tail(self.stdout_text(), 20)
        if extra.strip():
            out += f"\n--- janus stdout/stderr (last 20 lines; full: {self.stdout_path}) ---\n{extra}"
        return out

    def wait_for_log(self, needle: str, timeout: float = 10.0, interval: float = 0.05) -> bool:
        """Wait until ``needle`` appears in the log; returns whether it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            time.sleep(interval)
        return needle in self.log_text()

    # -------------------------------------------------------------- lifecycle
    def start(self, attempts: int = 3) -> "JanusServer":
        """Write the config, launch Janus and wait for the HTTP API.

        Retries with new ports if a port turned out to be taken (the free-port
        probe is inherently racy).  Raises ``JanusStartupError`` with the log
        tail if Janus exits or does not answer within ``startup_timeout``.
        """
        if shutil.which(self.janus_binary) is None and not Path(self.janus_binary).exists():
            raise JanusStartupError(f"janus binary not found: {self.janus_binary}")
        last_error: Exception | None = None
        for _ in range(max(1, attempts)):
            self.port = free_tcp_port()
            self.admin_port = free_tcp_port()
            while self.admin_port == self.port:
                self.admin_port = free_tcp_port()
            self.ws_port = None
            while self.websockets and self.ws_port in (None, self.port, self.admin_port):
                self.ws_port = free_tcp_port()
            self._write_config()
            for p in (self.log_path, self.stdout_path):
                if p.exists():
                    p.unlink()
            try:
                self._launch_and_wait()
                return self
            except JanusStartupError as e:
                last_error = e
                text = self.log_text() + self.stdout_text()
                if not any(s in text for s in ("Address already in use", "Couldn't start webserver",
                                                "Error creating vhost")):
                    break
        assert last_error is not None
        raise last_error

    def _launch_and_wait(self) -> None:
        self._stdout_file = open(self.stdout_path, "wb")
        cmd = [*self.wrapper, self.janus_binary, "-C", str(self.janus_config_path), "-F", str(self.conf_dir)]
        self.returncode = None
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_file,
            stderr=subprocess.STDOUT,
            cwd=str(self.workdir),
            env=self.env,
            start_new_session=True,  # our signals only, never the test's terminal ^C
        )
        deadline = time.monotonic() + self.startup_timeout
        err = "timed out"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = f"janus exited with code {self.proc.returncode} during startup"
                break
            try:
                with urllib.request.urlopen(self.url + "/info", timeout=1.0) as r:
                    info = json.loads(r.read().decode())
                if info.get("janus") == "server_info":
                    self.info = info
                    loaded = list(info.get("plugins") or {})
                    if len(loaded) != len(self.plugins):
                        err = (f"only {len(loaded)} of {len(self.plugins)} plugins loaded "
                               f"({loaded}; wanted {[str(p) for p in self.plugins]}); "
                               "Janus skips files not named *.so and plugins whose init fails")
                        try:
                            self.stop(timeout=5)
                        except JanusStopTimeout:
                            pass
                        break
                    if self._ws_ready():
                        return
                    err = "the WebSocket port does not accept connections"
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            time.sleep(0.05)
        # failed: make sure nothing is left running, then report
        if self.proc.poll() is None:  # (timed out)
            self.kill()
        else:
            self._reap()
        raise JanusStartupError(
            f"Janus did not start ({err}); command: {' '.join(cmd)}\n{self.log_tail(80)}"
        )

    def _ws_ready(self) -> bool:
        """True when no WebSocket transport was asked for, or its port accepts connections
        (transports start one after another, so HTTP may answer before it)."""
        if not self.websockets:
            return True
        try:
            with socket.create_connection(("127.0.0.1", self.ws_port), timeout=1.0):
                return True
        except OSError:
            return False

    def restart(self, timeout: float = 15.0) -> int | None:
        """Stop Janus (SIGTERM) and start it again on the same folders, keeping the plugins'
        configuration files as Janus left them (a plugin may save its own, e.g. permanent
        rooms).  Returns the exit code of the stop; the ports change."""
        code = self.stop(timeout=timeout)
        for name in list(self.plugin_configs):
            fname = name if name.endswith((".jcfg", ".cfg")) else f"{name}.jcfg"
            path = self.conf_dir / fname
            if path.exists():
                self.plugin_configs[name] = path.read_text()
        self.start()
        return code

    def alive(self) -> bool:
        """True while the Janus process is running."""
        return self.proc is not None and self.proc.poll() is None

    def _reap(self) -> int | None:
        if self.proc is not None:
            self.returncode = self.proc.poll()
        if self._stdout_file is not None:
            self._stdout_file.close()
            self._stdout_file = None
        return self.returncode

    def stop(self, signal: int = _signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Send ``signal`` and wait up to ``timeout`` s for Janus to exit.

        Returns the exit code (negative = killed by that signal, as in
        ``subprocess``).  If Janus is already dead, returns its exit code.  If
        it does not exit in time it is SIGKILLed and ``JanusStopTimeout`` is
        raised (a hang on shutdown is a bug worth failing a test for).
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stacks = self.dump_stacks()
                self.kill()
                raise JanusStopTimeout(
                    f"Janus did not exit within {timeout}s after signal {signal}; killed.\n"
                    + self.log_tail(40) + "\n--- threads of the stuck Janus ---\n" + stacks
                )
        return self._reap()

    def dump_stacks(self, timeout: float = 60.0) -> str:
        """Every thread's stack of the running Janus (gdb), for reports of a hang; also saved
        as ``stacks.txt`` in the work folder."""
        if not self.alive():
            return "(Janus is not running)"
        if shutil.which("gdb") is None:
            return "(gdb is not installed: no stacks)"
        try:
            out = subprocess.run(
                ["gdb", "-p", str(self.proc.pid), "-batch", "-nx",
                 "-ex", "set pagination off", "-ex", "thread apply all bt"],
                capture_output=True, text=True, timeout=timeout).stdout
        except (OSError, subprocess.SubprocessError) as e:
            return f"(gdb failed: {e})"
        (self.workdir / "stacks.txt").write_text(out)
        # The plugin's threads and the ones blocked in a lock are what matter.
        return _tail(out, 400)

    def kill(self) -> int | None:
        """SIGKILL Janus immediately (no cleanup) and reap it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        return self._reap()

    def cleanup(self) -> None:
        """Stop (if needed) and remove the temp dir unless it is to be kept."""
        if self.alive():
            try:
                self.stop(timeout=5)
            except JanusStopTimeout:
                pass
        self._reap()
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "JanusServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exited({self.returncode})"
        return f"<JanusServer {self.url} {state} workdir={self.workdir}>"
