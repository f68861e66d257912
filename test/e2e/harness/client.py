"""Minimal Janus HTTP API (REST + long-poll) client for tests.

Why HTTP and not WebSockets: the HTTP transport is in the stock Debian
package, needs no extra Python dependency and makes every exchange an
explicit request/response, which keeps test failures easy to read.

Model (Janus 1.1.2 HTTP API):

* ``POST <url>`` ``{"janus":"create"}`` -> session id.
* ``POST <url>/<session>`` ``{"janus":"attach","plugin":pkg}`` -> handle id.
* ``POST <url>/<session>/<handle>`` ``{"janus":"message","body":...,"jsep":...}``.
  A plugin answers either synchronously (HTTP reply ``{"janus":"success",
  "plugindata":{"plugin":..,"data":{..}}}``) or asynchronously (HTTP reply
  ``{"janus":"ack"}``, the real answer arrives later as an ``event`` carrying
  the same ``transaction``).
* ``GET <url>/<session>?maxev=N`` is the long poll: it returns a JSON array
  of up to N queued events (or a single ``{"janus":"keepalive"}`` object
  after ~30 s of nothing).  Events carry ``sender`` = the handle id.
* ``POST <url>/<session>`` ``{"janus":"keepalive"}`` keeps the session alive.

``JanusSession`` runs one long-poll thread and one keepalive thread and
routes every event to its ``Handle`` (by ``sender``).  Each ``Handle`` keeps
the complete event history in ``Handle.events`` and lets tests wait for
events by predicate or by transaction.  Everything is blocking and thread
safe; asyncio tests can use the ``a*`` coroutine wrappers (they run the
blocking call in a worker thread).

Admin API: ``admin_request(admin_url, secret, plugin, body)`` sends
``{"janus":"message_plugin","plugin":pkg,"request":body,"admin_secret":..}``
to ``POST <admin_url>`` and returns the plugin's reply, which Janus wraps as
``{"janus":"success","response":{...}}``.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import requests

JSON = dict[str, Any]


class JanusError(RuntimeError):
    """A Janus-level error reply (``{"janus":"error","error":{code,reason}}``)."""

    def __init__(self, message: str, code: int | None = None, reply: Any = None):
        super().__init__(message)
        self.code = code
        self.reply = reply


class PluginError(RuntimeError):
    """A plugin answered with an ``error``/``error_code`` in its data."""

    def __init__(self, data: JSON):
        super().__init__(f"plugin error {data.get('error_code')}: {data.get('error')} ({data})")
        self.data = data
        self.code = data.get("error_code")


def new_transaction() -> str:
    return secrets.token_hex(8)


def _check(reply: JSON, what: str) -> JSON:
    if not isinstance(reply, dict):
        raise JanusError(f"{what}: unexpected reply {reply!r}", reply=reply)
    if reply.get("janus") == "error":
        err = reply.get("error") or {}
        raise JanusError(f"{what}: error {err.get('code')}: {err.get('reason')}",
                         code=err.get("code"), reply=reply)
    return reply


def _post(http: requests.Session, url: str, payload: JSON, timeout: float) -> JSON:
    r = http.post(url, json=payload, timeout=timeout)
    r.raise_for_status()
    return r.json()


# ------------------------------------------------------------------ Admin API
def admin_call(admin_url: str, secret: str, request: JSON, timeout: float = 10.0) -> JSON:
    """Send any Admin API request (``{"janus": "list_sessions", ...}``) and
    return the full reply; raises ``JanusError`` on ``{"janus":"error"}``."""
    payload = dict(request)
    payload.setdefault("transaction", new_transaction())
    payload["admin_secret"] = secret
    r = requests.post(admin_url, json=payload, timeout=timeout)
    r.raise_for_status()
    return _check(r.json(), f"admin {request.get('janus')}")


def admin_request(admin_url: str, secret: str, plugin: str, body: JSON,
                  timeout: float = 10.0) -> JSON:
    """Admin API ``message_plugin``: deliver ``body`` to ``plugin``'s
    ``handle_admin_message`` and return the plugin's response object."""
    reply = admin_call(admin_url, secret,
                       {"janus": "message_plugin", "plugin": plugin, "request": body},
                       timeout=timeout)
    if "response" not in reply:
        raise JanusError(f"message_plugin: no 'response' in reply {reply}", reply=reply)
    return reply["response"]


# ------------------------------------------------------------------- events
@dataclass
class Event:
    """One message received on the long poll for a handle."""

    msg: JSON                   # the raw Janus message
    received_at: float          # time.monotonic() when it arrived
    consumed: bool = False      # returned by a wait_* call already

    @property
    def janus(self) -> str:
        return self.msg.get("janus", "")

    @property
    def transaction(self) -> Optional[str]:
        return self.msg.get("transaction")

    @property
    def data(self) -> Optional[JSON]:
        """``plugindata.data`` for plugin events, else ``None``."""
        pd = self.msg.get("plugindata")
        return pd.get("data") if isinstance(pd, dict) else None

    @property
    def jsep(self) -> Optional[JSON]:
        return self.msg.get("jsep")


class Handle:
    """A plugin handle.  Created by ``JanusSession.attach()``."""

    def __init__(self, session: "JanusSession", handle_id: int, plugin: str):
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.events: list[Event] = []      # complete history, in arrival order
        self.detached = False

    @property
    def url(self) -> str:
        return f"{self.session.session_url}/{self.id}"

    # ----------------------------------------------------------- requests
    def _message(self, body: JSON, jsep: Optional[JSON], tx: str, timeout: float) -> JSON:
        payload: JSON = {"janus": "message", "transaction": tx, "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        return _check(self.session._post(self.url, payload, timeout), f"message {body}")

    def request(self, body: JSON, jsep: Optional[JSON] = None, timeout: float = 10.0,
                raise_plugin_error: bool = False) -> JSON:
        """Send a plugin request and return its ``plugindata.data``.

        Works for synchronous requests (answer in the HTTP reply) and for
        asynchronous ones (``ack`` now, event later): in the latter case this
        waits for the event with the same transaction.  With
        ``raise_plugin_error`` a reply containing ``error_code`` raises
        ``PluginError``.
        """
        data, _ = self.request_full(body, jsep, timeout)
        if raise_plugin_error and isinstance(data, dict) and "error_code" in data:
            raise PluginError(data)
        return data

    def request_full(self, body: JSON, jsep: Optional[JSON] = None,
                     timeout: float = 10.0) -> tuple[JSON, Optional[JSON]]:
        """Like ``request`` but returns ``(data, jsep)``."""
        tx = new_transaction()
        reply = self._message(body, jsep, tx, timeout)
        if reply.get("janus") == "success":
            pd = reply.get("plugindata") or {}
            return pd.get("data"), reply.get("jsep")
        if reply.get("janus") == "ack":
            return self.wait_transaction(tx, timeout)
        raise JanusError(f"unexpected reply to {body}: {reply}", reply=reply)

    def send(self, body: JSON, jsep: Optional[JSON] = None, timeout: float = 10.0) -> str:
        """Send an asynchronous request; returns the transaction id to wait on.

        If the plugin nevertheless answers synchronously, the answer is
        recorded as an event so ``wait_transaction`` still finds it.
        """
        tx = new_transaction()
        reply = self._message(body, jsep, tx, timeout)
        if reply.get("janus") == "success":
            self.session._deliver_to(self, reply)
        return tx

    def trickle(self, candidate: Optional[JSON] = None, completed: bool = False) -> None:
        """Send a trickle candidate (or end-of-candidates)."""
        payload: JSON = {"janus": "trickle", "transaction": new_transaction()}
        payload["candidate"] = {"completed": True} if completed or candidate is None else candidate
        _check(self.session._post(self.url, payload, 10.0), "trickle")

    def hangup(self) -> None:
        """Ask Janus to close this handle's PeerConnection."""
        _check(self.session._post(self.url, {"janus": "hangup", "transaction": new_transaction()}, 10.0),
               "hangup")

    def detach(self) -> None:
        """Detach the handle (plugin's destroy_session is called)."""
        if self.detached:
            return
        _check(self.session._post(self.url, {"janus": "detach", "transaction": new_transaction()}, 10.0),
               "detach")
        self.detached = True

    # -------------------------------------------------------------- events
    def wait(self, match: Callable[[Event], bool], timeout: float = 10.0,
             consume: bool = True, what: str = "event") -> Event:
        """Wait for the first not-yet-consumed event for which ``match(ev)``
        is true (already received ones count).  Raises ``TimeoutError``
        listing the events seen so far."""
        return self.session._wait(self, match, timeout, consume, what)

    def wait_event(self, predicate: Optional[Callable[[JSON], bool]] = None,
                   timeout: float = 10.0) -> tuple[JSON, Optional[JSON]]:
        """Wait for a plugin ``event`` whose data satisfies ``predicate``
        (any plugin event if ``None``); returns ``(data, jsep)``.

        Each event is returned at most once across wait_* calls, so waiting
        twice for "talking" yields two different events.
        """
        def match(ev: Event) -> bool:
            return ev.janus == "event" and ev.data is not None and (predicate is None or bool(predicate(ev.data)))
        ev = self.wait(match, timeout, what="plugin event")
        return ev.data, ev.jsep

    def wait_transaction(self, tx: str, timeout: float = 10.0) -> tuple[JSON, Optional[JSON]]:
        """Wait for the plugin event answering transaction ``tx``; ``(data, jsep)``."""
        ev = self.wait(lambda e: e.transaction == tx and e.data is not None, timeout,
                       what=f"event for transaction {tx}")
        return ev.data, ev.jsep

    def wait_janus(self, kind: str, timeout: float = 10.0,
                   predicate: Optional[Callable[[JSON], bool]] = None) -> JSON:
        """Wait for a core event such as ``webrtcup``, ``media``, ``hangup``,
        ``slowlink``, ``detached``; returns the raw message."""
        ev = self.wait(lambda e: e.janus == kind and (predicate is None or bool(predicate(e.msg))),
                       timeout, what=f"'{kind}'")
        return ev.msg

    def plugin_events(self) -> list[JSON]:
        """Data of all plugin events received so far (consumed or not)."""
        with self.session._cond:
            return [e.data for e in self.events if e.data is not None]

    # --------------------------------------------------------------- async
    async def arequest(self, body: JSON, jsep: Optional[JSON] = None, timeout: float = 10.0) -> JSON:
        return await asyncio.to_thread(self.request, body, jsep, timeout)

    async def arequest_full(self, body: JSON, jsep: Optional[JSON] = None,
                            timeout: float = 10.0) -> tuple[JSON, Optional[JSON]]:
        return await asyncio.to_thread(self.request_full, body, jsep, timeout)

    async def asend(self, body: JSON, jsep: Optional[JSON] = None) -> str:
        return await asyncio.to_thread(self.send, body, jsep)

    async def await_event(self, predicate=None, timeout: float = 10.0):
        return await asyncio.to_thread(self.wait_event, predicate, timeout)

    async def await_transaction(self, tx: str, timeout: float = 10.0):
        return await asyncio.to_thread(self.wait_transaction, tx, timeout)

    async def await_janus(self, kind: str, timeout: float = 10.0, predicate=None) -> JSON:
        return await asyncio.to_thread(self.wait_janus, kind, timeout, predicate)

    async def adetach(self) -> None:
        await asyncio.to_thread(self.detach)

    def __repr__(self) -> str:
        return f"<Handle {self.plugin} id={self.id} events={len(self.events)}>"


class JanusSession:
    """A Janus API session over HTTP with long-poll event delivery.

    ``JanusSession(url)`` creates the session immediately and starts the
    long-poll and keepalive threads; ``destroy()`` ends it (also usable as a
    context manager).  Session-level events (no ``sender``, or for unknown
    handles) are kept in ``session.events``.
    """

    def __init__(self, url: str, keepalive_interval: float = 15.0,
                 request_timeout: float = 10.0, maxev: int = 10):
        self.url = url.rstrip("/")
        self.request_timeout = request_timeout
        self.maxev = maxev
        self._local = threading.local()
        self._cond = threading.Condition()
        self._all_http: list[requests.Session] = []
        self._stop = threading.Event()
        self.handles: dict[int, Handle] = {}
        self.events: list[Event] = []
        self.poll_errors: list[str] = []
        self.destroyed = False
        reply = _check(self._post(self.url, {"janus": "create", "transaction": new_transaction()}),
                       "create session")
        self.id: int = reply["data"]["id"]
        self._rid = itertools.count(1)
        self._poller = threading.Thread(target=self._poll_loop, name=f"janus-poll-{self.id}", daemon=True)
        self._poller.start()
        self._keepalive_interval = keepalive_interval
        self._keeper = threading.Thread(target=self._keepalive_loop, name=f"janus-ka-{self.id}", daemon=True)
        self._keeper.start()

    @property
    def session_url(self) -> str:
        return f"{self.url}/{self.id}"

    # ------------------------------------------------------------ plumbing
    def _http(self) -> requests.Session:
        s = getattr(self._local, "http", None)
        if s is None:
            s = self._local.http = requests.Session()
            with self._cond:
                self._all_http.append(s)
        return s

    def _post(self, url: str, payload: JSON, timeout: Optional[float] = None) -> JSON:
        return _post(self._http(), url, payload, timeout or self.request_timeout)

    def _deliver_to(self, handle: Optional[Handle], msg: JSON) -> None:
        ev = Event(msg=msg, received_at=time.monotonic())
        with self._cond:
            if handle is not None:
                handle.events.append(ev)
                if msg.get("janus") == "detached":
                    handle.detached = True
            else:
                self.events.append(ev)
            self._cond.notify_all()

    def _dispatch(self, msg: JSON) -> None:
        sender = msg.get("sender")
        with self._cond:
            handle = self.handles.get(sender) if sender is not None else None
        self._deliver_to(handle, msg)

    def _poll_loop(self) -> None:
        http = requests.Session()
        while not self._stop.is_set():
            try:
                r = http.get(f"{self.session_url}?maxev={self.maxev}&rid={next(self._rid)}",
                             timeout=45)
                if self._stop.is_set():
                    break
                r.raise_for_status()
                payload = r.json()
            except Exception as e:  # server gone, session destroyed, ...
                if self._stop.is_set():
                    break
                with self._cond:
                    self.poll_errors.append(repr(e))
                    self._cond.notify_all()
                time.sleep(0.2)
                continue
            msgs = payload if isinstance(payload, list) else [payload]
            for msg in msgs:
                if not isinstance(msg, dict) or msg.get("janus") == "keepalive":
                    continue
                if msg.get("janus") == "error" and msg.get("sender") is None:
                    # e.g. "No such session" once the session timed out/was destroyed
                    with self._cond:
                        self.poll_errors.append(str(msg))
                        self.events.append(Event(msg, time.monotonic()))
                        self._cond.notify_all()
                    continue
                self._dispatch(msg)
        http.close()

    def _keepalive_loop(self) -> None:
        while not self._stop.wait(self._keepalive_interval):
            try:
                self._post(self.session_url, {"janus": "keepalive", "transaction": new_transaction()})
            except Exception as e:
                with self._cond:
                    self.poll_errors.append(f"keepalive: {e!r}")

    def _wait(self, handle: Handle, match: Callable[[Event], bool], timeout: float,
              consume: bool, what: str) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in handle.events:
                    if not ev.consumed and match(ev):
                        if consume:
                            ev.consumed = True
                        return ev
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = "\n  ".join(str(e.msg) for e in handle.events[-15:]) or "(none)"
                    errs = f"\npoll errors: {self.poll_errors[-3:]}" if self.poll_errors else ""
                    raise TimeoutError(
                        f"timed out after {timeout}s waiting for {what} on handle {handle.id} "
                        f"({handle.plugin}); last events:\n  {seen}{errs}")
                self._cond.wait(remaining)

    # -------------------------------------------------------------- public
    def attach(self, plugin: str) -> Handle:
        """Attach to plugin package ``plugin`` (e.g. ``janus.plugin.audiobridge``)."""
        reply = _check(self._post(self.session_url, {"janus": "attach", "plugin": plugin,
                                                      "transaction": new_transaction()}),
                       f"attach {plugin}")
        h = Handle(self, reply["data"]["id"], plugin)
        with self._cond:
            self.handles[h.id] = h
        return h

    def info(self) -> JSON:
        """``GET <url>/info`` (server_info)."""
        r = self._http().get(f"{self.url}/info", timeout=self.request_timeout)
        r.raise_for_status()
        return r.json()

    def destroy(self) -> None:
        """Destroy the session (detaches all handles) and stop the threads."""
        if self.destroyed:
            return
        self.destroyed = True
        self._stop.set()
        try:
            self._post(self.session_url, {"janus": "destroy", "transaction": new_transaction()}, 5.0)
        except Exception:
            pass  # server may already be gone; nothing left to clean up then
        self._keeper.join(timeout=1.0)
        # The long poll may be parked server-side for up to 30 s; it is a
        # daemon thread and exits on its own once that GET returns.
        self._poller.join(timeout=0.1)
        # Every thread's keep-alive connection: left open, each would hold a socket in Janus
        # (a soak of many sessions would count them as the server's).
        with self._cond:
            connections, self._all_http = self._all_http, []
        for http in connections:
            http.close()

    def abandon(self) -> None:
        """Go silent like a client that vanished: no keepalives, no polling, no destroy.
        Janus ends the session itself when its session_timeout passes."""
        self.destroyed = True
        self._stop.set()

    async def aattach(self, plugin: str) -> Handle:
        return await asyncio.to_thread(self.attach, plugin)

    async def adestroy(self) -> None:
        await asyncio.to_thread(self.destroy)

    def __enter__(self) -> "JanusSession":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"<JanusSession {self.id} handles={list(self.handles)}>"
