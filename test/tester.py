#!/usr/bin/env python3
"""Operator's helper for janus.plugin.cm.audioroom, over Janus's HTTP API.

Interactive:  python3 -i test/tester.py [--url http://127.0.0.1:8088/janus]
              then call greet() for the list of functions.
Scriptable:   test/tester.py [--url URL] COMMAND [ARGS] [--field key=value ...]
              prints the plugin's reply (plugindata.data) as JSON on stdout.

Exit codes: 0 success, 1 the reply carries error_code, 2 Janus answered with an error
(or not with JSON), 3 Janus cannot be reached, 4 no answer in time, 64 bad usage.

Only the Python standard library is used. See test/README.md.
"""

import argparse
import atexit
import builtins
import inspect
import json
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException

PLUGIN = "janus.plugin.cm.audioroom"
DEFAULT_URL = "http://127.0.0.1:8088/janus"
TIMEOUT = 10.0  # seconds for a request, or for the event answering an async request
KEEPALIVE_EVERY = 25  # seconds; Janus drops a silent session after 60 by default
LONG_POLL_TIMEOUT = 60  # longer than Janus's own 30 s, see Janus._poll

EXIT_OK, EXIT_PLUGIN_ERROR, EXIT_JANUS_ERROR, EXIT_UNREACHABLE, EXIT_NO_ANSWER = 0, 1, 2, 3, 4
EXIT_USAGE = 64  # not argparse's 2, which would look like a Janus error


class JanusError(Exception):
    """Janus answered {"janus":"error"} (or something that is not a Janus reply at all)."""

    def __init__(self, reply):
        self.reply = reply
        error = reply.get("error", {})
        super().__init__(f"Janus error {error.get('code')}: {error.get('reason')}")


class Unreachable(Exception):
    """No HTTP conversation with Janus: connection refused, unknown host, reset..."""


class NoAnswer(Exception):
    """Janus (or the plugin) did not answer within the timeout."""


class Janus:
    """A minimal Janus HTTP client: one session, one current handle, or the Admin API.

    Events are read by a background long poll started with the first asynchronous request.
    Janus writes the next event into the open long poll even when the client has hung up, so a
    poll abandoned on a client-side timeout loses an event: the poller never abandons one, and
    callers wait with a timeout on its queue instead.
    """

    def __init__(self, url=DEFAULT_URL, admin_url=None, admin_secret=None, plugin=PLUGIN,
                 timeout=TIMEOUT):
        self.url = url.rstrip("/")
        self.admin_url = admin_url
        self.admin_secret = admin_secret
        self.plugin = plugin
        self.timeout = timeout
        self.session_id = None
        self.handle_id = None
        self._events = []  # Janus events not yet claimed, oldest first
        self._poll_error = None
        self._poller = None
        self._cond = threading.Condition()
        self._stop = threading.Event()

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self, url, payload=None, timeout=None):
        """GET (no payload) or POST JSON; returns the decoded reply, raises on Janus errors."""
        timeout = self.timeout if timeout is None else timeout
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:  # e.g. 404 for an unknown path or session
            raw = e.read()
            try:
                json.loads(raw)
            except ValueError:
                raise JanusError(_error_reply(e.code, f"HTTP {e.code} {e.reason} from {url}")) from None
        except (socket.timeout, TimeoutError):
            raise NoAnswer(f"no answer from {url} within {timeout:g} s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise NoAnswer(f"no answer from {url} within {timeout:g} s") from None
            raise Unreachable(f"cannot reach Janus at {url}: {e.reason}") from None
        except (OSError, HTTPException) as e:
            raise Unreachable(f"cannot reach Janus at {url}: {e}") from None
        try:
            reply = json.loads(raw)
        except ValueError:
            raise JanusError(_error_reply(None, f"not a JSON reply from {url}: {raw[:200]!r}")) from None
        if isinstance(reply, dict) and reply.get("janus") == "error":
            if reply.get("error", {}).get("code") == 458:  # No such session: start afresh next time
                self.session_id = self.handle_id = None
            raise JanusError(reply)
        return reply

    def _post(self, url, payload):
        return self._http(url, {"transaction": new_transaction(), **payload})

    # -- session and handle ----------------------------------------------------------------

    def create_session(self):
        """A new session (the previous one, if any, is destroyed), kept alive in the background."""
        self.close()
        reply = self._post(self.url, {"janus": "create"})
        self.session_id = reply["data"]["id"]
        with self._cond:
            self._events = []
        self._stop = threading.Event()
        _daemon(self._keep_alive, self.session_id, self._stop)
        return reply

    def attach_handle(self):
        """A new handle on the plugin; older handles stay attached until the session ends."""
        if self.session_id is None:
            self.create_session()
        reply = self._post(f"{self.url}/{self.session_id}", {"janus": "attach", "plugin": self.plugin})
        self.handle_id = reply["data"]["id"]
        return reply

    def keepalive(self):
        if self.session_id is None:
            self.create_session()
        return self._post(f"{self.url}/{self.session_id}", {"janus": "keepalive"})

    def close(self):
        """Destroy the session (errors ignored) and stop the background threads."""
        self._stop.set()
        session_id, self.session_id, self.handle_id = self.session_id, None, None
        if session_id is not None:
            try:
                self._post(f"{self.url}/{session_id}", {"janus": "destroy"})
            except (JanusError, Unreachable, NoAnswer):
                pass

    def _keep_alive(self, session_id, stop):
        while not stop.wait(KEEPALIVE_EVERY) and self.session_id == session_id:
            try:
                self._post(f"{self.url}/{session_id}", {"janus": "keepalive"})
            except (JanusError, Unreachable, NoAnswer):
                pass

    # -- plugin requests -------------------------------------------------------------------

    def request(self, body):
        """Send a request body to the plugin; return its reply (plugindata.data).

        A synchronous request is answered in the HTTP reply; an asynchronous one gets "ack"
        and then an event with the same transaction, which this waits for.
        """
        if self.admin_url:
            payload = {"janus": "message_plugin", "plugin": self.plugin, "request": body}
            if self.admin_secret is not None:
                payload["admin_secret"] = self.admin_secret
            return self._post(self.admin_url, payload).get("response")
        if self.handle_id is None:
            self.attach_handle()
        transaction = new_transaction()
        reply = self._http(f"{self.url}/{self.session_id}/{self.handle_id}",
                           {"janus": "message", "body": body, "transaction": transaction})
        if reply.get("janus") == "ack":
            reply = self.wait_event(lambda event: event.get("transaction") == transaction)
        return reply.get("plugindata", {}).get("data", reply)

    def wait_event(self, match, timeout=None):
        """The first queued event for which match(event) holds, waiting up to timeout seconds."""
        self._start_poller()
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, event in enumerate(self._events):
                    if match(event):
                        return self._events.pop(i)
                if self._poll_error is not None:
                    raise self._poll_error
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NoAnswer(f"no answering event within {timeout:g} s")
                self._cond.wait(remaining)

    def take_events(self, timeout=0.0):
        """Every queued event, waiting up to timeout seconds when there is none yet."""
        if self.session_id is None:
            return []
        try:
            first = self.wait_event(lambda event: True, timeout)
        except NoAnswer:
            return []
        with self._cond:
            events, self._events = [first] + self._events, []
        return events

    def _start_poller(self):
        if self.session_id is None:
            self.create_session()
        if self._poller is None or not self._poller.is_alive() or self._poll_error is not None:
            self._poll_error = None
            self._poller = _daemon(self._poll, self.session_id, self._stop)

    def _poll(self, session_id, stop):
        # Janus answers a long poll with {"janus":"keepalive"} after 30 s without events;
        # the client-side timeout is longer so that this never hangs up first.
        url = f"{self.url}/{session_id}?maxev=10"
        while not stop.is_set() and self.session_id == session_id:
            try:
                reply = self._http(url, timeout=LONG_POLL_TIMEOUT)
            except (JanusError, Unreachable, NoAnswer) as e:
                if not stop.is_set():
                    with self._cond:
                        self._poll_error = e
                        self._cond.notify_all()
                return
            events = reply if isinstance(reply, builtins.list) else [reply]
            with self._cond:
                self._events.extend(e for e in events if e.get("janus") != "keepalive")
                self._cond.notify_all()


def _daemon(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _error_reply(code, reason):
    return {"janus": "error", "error": {"code": code, "reason": reason}}


def new_transaction():
    return secrets.token_hex(6)


# -- the operator's functions (interactive mode; script mode calls the same ones) -----------

_client = None
_shown = None  # the value show() printed last, so the interpreter does not echo it again


def client():
    """The Janus client the functions below use (created on first use)."""
    global _client
    if _client is None:
        _client = Janus()
    return _client


def show(value):
    """Print a reply as indented JSON (non-ASCII kept when the terminal takes it); return it."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    print(json.dumps(value, indent=2, ensure_ascii=encoding not in ("utf8", "utf16", "utf32")))
    sys.stdout.flush()
    global _shown
    _shown = value
    return value


def _displayhook(value):
    """The interpreter's echo, minus the reply show() printed during this statement."""
    global _shown
    if value is not None and value is _shown:
        builtins._, _shown = value, None
        return
    sys.__displayhook__(value)


class _Prompt(str):
    """sys.ps1 that forgets the shown reply at each new prompt (so that `r` echoes it)."""

    def __str__(self):
        global _shown
        _shown = None
        return str.__str__(self)


def greet():
    """Print this list of functions."""
    c = client()
    target = f"Admin API {c.admin_url}" if c.admin_url else c.url
    print(f"tester.py for {c.plugin} via {target}\n")
    for function in INTERACTIVE:
        doc = (function.__doc__ or "").strip().splitlines()[0]
        print(f"  {function.__name__}{inspect.signature(function)}\n      {doc}")
    print("\nEach request prints the plugin's reply and returns it as a dict; "
          "a session and a handle are created on first use.")


def session():
    """Create a new Janus session (the previous one is destroyed); return its id."""
    show(client().create_session())
    return client().session_id


def attach():
    """Attach a new handle to the plugin (older ones stay, as extra participants); return its id."""
    show(client().attach_handle())
    return client().handle_id


def keepalive():
    """Send a keepalive on the session (one is also sent every 25 s in the background)."""
    return show(client().keepalive())


def request(request, **fields):
    """Send any request with exactly the given fields, nothing dropped (None is JSON null)."""
    return show(client().request({"request": request, **fields}))


def _send(name, extra, **named):
    # Named parameters left at None are omitted; extra fields are sent as given and win.
    return request(**{"request": name, **{k: v for k, v in named.items() if v is not None}, **extra})


def create(id=None, description=None, sampling=None, **extra):
    """Create a room (no id: the plugin picks one); extra: secret, pin, is_private, record..."""
    return _send("create", extra, id=id, description=description, sampling=sampling)


def list(**extra):  # noqa: A001 - the plugin's request name; builtins.list stays reachable
    """List the public rooms."""
    return _send("list", extra)


def exists(id, **extra):
    """Tell whether a room exists."""
    return _send("exists", extra, id=id)


def listparticipants(id, **extra):
    """List a room's participants."""
    return _send("listparticipants", extra, id=id)


def destroy(id, secret=None, **extra):
    """Destroy a room."""
    return _send("destroy", extra, id=id, secret=secret)


def edit(id, secret=None, new_description=None, new_secret=None, new_pin=None,
         new_is_private=None, **extra):
    """Change a room's description, secret, pin or privacy."""
    return _send("edit", extra, id=id, secret=secret, new_description=new_description,
                 new_secret=new_secret, new_pin=new_pin, new_is_private=new_is_private)


def kick(id, userid, secret=None, **extra):
    """Kick a participant out of a room."""
    return _send("kick", extra, id=id, userid=userid, secret=secret)


def mute(id, userid, secret=None, **extra):
    """Mute a participant."""
    return _send("mute", extra, id=id, userid=userid, secret=secret)


def unmute(id, userid, secret=None, **extra):
    """Unmute a participant."""
    return _send("unmute", extra, id=id, userid=userid, secret=secret)


def kick_all(id, secret=None, **extra):
    """Kick everyone out of a room (the room stays)."""
    return _send("kick_all", extra, id=id, secret=secret)


def mute_room(id, secret=None, **extra):
    """Mute a room: only moderators (joined with the secret) are heard."""
    return _send("mute_room", extra, id=id, secret=secret)


def unmute_room(id, secret=None, **extra):
    """Unmute a room."""
    return _send("unmute_room", extra, id=id, secret=secret)


def suspend(id, userid, secret=None, **extra):
    """Suspend a participant: neither heard nor hearing, still in the room."""
    return _send("suspend", extra, id=id, userid=userid, secret=secret)


def resume(id, userid, secret=None, **extra):
    """Resume a suspended participant."""
    return _send("resume", extra, id=id, userid=userid, secret=secret)


def allowed(id, action, allowed=None, secret=None, **extra):
    """Change a room's access list: action enable, disable, add or remove (with allowed=[tokens])."""
    return _send("allowed", extra, id=id, action=action, allowed=allowed, secret=secret)


def enable_recording(id, record, secret=None, recording_pattern=None, **extra):
    """Stop (record=False) or start (record=True) a room's recording."""
    return _send("enable_recording", extra, id=id, record=record, secret=secret,
                 recording_pattern=recording_pattern)


def rtp_forward(id, host, port, codec=None, secret=None, **extra):
    """Forward a room's mix as RTP to host:port (codec opus, pcmu or pcma); extra: ptype, ssrc, srtp_suite..."""
    return _send("rtp_forward", extra, id=id, host=host, port=port, codec=codec, secret=secret)


def stop_rtp_forward(id, stream_id, secret=None, **extra):
    """Stop a room's RTP forwarder."""
    return _send("stop_rtp_forward", extra, id=id, stream_id=stream_id, secret=secret)


def listforwarders(id, secret=None, **extra):
    """List a room's RTP forwarders."""
    return _send("listforwarders", extra, id=id, secret=secret)


def link(id, link_id=None, rtp=None, upstream=None, prebuffering=None, timeout=None, peer=None,
         secret=None, **extra):
    """Open (or, with rtp={ip, port}, point) this server's end of a link; link_servers() does all 3 steps."""
    return _send("link", extra, id=id, link_id=link_id, rtp=rtp, upstream=upstream,
                 prebuffering=prebuffering, timeout=timeout, peer=peer, secret=secret)


def unlink(id, link_id, secret=None, **extra):
    """Close this server's end of a link; unlink_servers() closes both ends."""
    return _send("unlink", extra, id=id, link_id=link_id, secret=secret)


def link_servers(from_url, to_url, id, secret=None, link_id=None, record="origin", prebuffering=None,
                 timeout=None, admin_key=None):
    """Link room id on from_url (origin) and to_url (edge), creating it where missing; see `link -h`."""
    if record not in RECORD_CHOICES:
        raise ValueError(f"record should be one of {', '.join(RECORD_CHOICES)}, not {record!r}")
    link_id = link_id or f"link-{secrets.token_hex(4)}"
    keys = {k: v for k, v in (("secret", secret), ("admin_key", admin_key)) if v is not None}
    tuning = {k: v for k, v in (("prebuffering", prebuffering), ("timeout", timeout)) if v is not None}
    origin, edge = (Janus(url, timeout=client().timeout, plugin=client().plugin) for url in (from_url, to_url))
    opened = []  # (server, url) whose end of the link this call opened, for the rollback
    summary = {"audioroom": "linked", "id": id, "link_id": link_id}

    def step(what, server, url, body):
        reply = server.request(body)
        if isinstance(reply, dict) and "error_code" in reply:
            _note(f"{what} on {url} failed: {reply.get('error_code')} {reply.get('error')}")
            raise _Failed(reply)
        return reply

    try:
        rate, created_origin = _ensure_room(step, origin, from_url, id, None, record in ("origin", "both"), keys)
        edge_rate, created_edge = _ensure_room(step, edge, to_url, id, rate, record in ("edge", "both"), keys)
        if rate and edge_rate and rate != edge_rate:
            _note(f"warning: room {id} mixes at {rate} Hz on {from_url} but {edge_rate} Hz on {to_url}")
        a = step("step 1 (link on the origin)", origin, from_url,
                 {"request": "link", "id": id, "link_id": link_id, "peer": to_url, **tuning, **keys})
        opened.append((origin, from_url))
        _note(f"{from_url}: link {link_id} in room {id} listens on {a['rtp']['ip']}:{a['rtp']['port']}")
        b = step("step 2 (upstream link on the edge)", edge, to_url,
                 {"request": "link", "id": id, "link_id": link_id, "upstream": True, "peer": from_url,
                  "rtp": {"ip": a["rtp"]["ip"], "port": a["rtp"]["port"],
                          "payload_type": a["rtp"]["payload_type"]}, **tuning, **keys})
        opened.append((edge, to_url))
        _note(f"{to_url}: link {link_id} in room {id} listens on {b['rtp']['ip']}:{b['rtp']['port']}, "
              f"sends to {a['rtp']['ip']}:{a['rtp']['port']}")
        step("step 3 (point the origin at the edge)", origin, from_url,
             {"request": "link", "id": id, "link_id": link_id,
              "rtp": {"ip": b["rtp"]["ip"], "port": b["rtp"]["port"],
                      "payload_type": b["rtp"]["payload_type"]}, **keys})
        _note(f"{from_url}: link {link_id} sends to {b['rtp']['ip']}:{b['rtp']['port']}")
        for url, rtp in ((from_url, a["rtp"]), (to_url, b["rtp"])):
            if _is_loopback(rtp["ip"]) and not _same_machine(from_url, to_url):
                _note(f"warning: {url} gave a loopback address ({rtp['ip']}), which the other server cannot "
                      "reach: set local_ip in its janus.plugin.cm.audioroom.jcfg")
        summary["from"] = {"url": from_url, "created": created_origin, "sampling_rate": rate, "rtp": a["rtp"]}
        summary["to"] = {"url": to_url, "created": created_edge, "upstream": True, "rtp": b["rtp"]}
        opened.clear()
        return show(summary)
    except _Failed as failure:
        return show(failure.reply)
    finally:
        for server, url in reversed(opened):  # a failed setup leaves no half-made link behind
            try:
                server.request({"request": "unlink", "id": id, "link_id": link_id, **keys})
                _note(f"{url}: link {link_id} closed again")
            except (JanusError, Unreachable, NoAnswer):
                pass
        origin.close()
        edge.close()


def unlink_servers(from_url, to_url, id, link_id, secret=None, admin_key=None):
    """Close both ends of a link made by link_servers(): on to_url (edge), then on from_url (origin)."""
    keys = {k: v for k, v in (("secret", secret), ("admin_key", admin_key)) if v is not None}
    replies = {}
    for url in (to_url, from_url):
        server = Janus(url, timeout=client().timeout, plugin=client().plugin)
        try:
            reply = server.request({"request": "unlink", "id": id, "link_id": link_id, **keys})
        finally:
            server.close()
        replies[url] = reply
        if "error_code" in reply:
            _note(f"unlink on {url} failed: {reply.get('error_code')} {reply.get('error')}")
        else:
            _note(f"{url}: link {link_id} in room {id} closed")
    failed = [r for r in replies.values() if "error_code" in r]
    if failed:
        return show(failed[0])
    return show({"audioroom": "unlinked", "id": id, "link_id": link_id, "from": from_url, "to": to_url})


RECORD_CHOICES = ("origin", "edge", "both", "none")


class _Failed(Exception):
    """A step of link_servers() got the plugin's error reply."""

    def __init__(self, reply):
        super().__init__(reply.get("error"))
        self.reply = reply


def _note(text):
    """What link_servers() and unlink_servers() did, on stderr (stdout keeps the one JSON reply)."""
    print(f"tester.py: {text}", file=sys.stderr)
    sys.stderr.flush()


def _ensure_room(step, server, url, id, rate, record, keys):
    """(the room's sampling rate, whether it was created): creates it with record and rate
    (None: the plugin's default) when missing. A private room's rate is not listed: None."""
    exists = step("exists", server, url, {"request": "exists", "id": id})
    created = not exists.get("exists")
    if created:
        body = {"request": "create", "id": id, "record": record, **keys}
        if rate is not None:
            body["sampling"] = rate
        step("create", server, url, body)
        _note(f"{url}: created room {id} ({'recorded' if record else 'not recorded'}"
              f"{f', {rate} Hz' if rate else ''})")
    else:
        _note(f"{url}: room {id} exists; its settings are left as they are")
    listed = step("list", server, url, {"request": "list"})
    found = next((r for r in listed.get("list", []) if r.get("id") == id), None)
    if found is None:
        _note(f"{url}: room {id} is private, so its sampling rate cannot be read (the edge's room, "
              "if created, gets the plugin's default)")
        return None, created
    return found.get("sampling_rate"), created


def _is_loopback(host):
    return host is not None and (host.startswith("127.") or host in ("::1", "localhost"))


def _same_machine(url_a, url_b):
    """Whether two Janus URLs name one machine (then a loopback address reaches either)."""
    a, b = (urllib.parse.urlsplit(u).hostname for u in (url_a, url_b))
    return a == b or (_is_loopback(a) and _is_loopback(b))


def play_file(id, filename, file_id=None, loop=None, secret=None, **extra):
    """Play a file (Ogg Opus or WAV, under announcements_path) into a room."""
    return _send("play_file", extra, id=id, filename=filename, file_id=file_id, loop=loop,
                 secret=secret)


def is_playing(id, file_id, secret=None, **extra):
    """Tell whether a room is playing an announcement."""
    return _send("is_playing", extra, id=id, file_id=file_id, secret=secret)


def stop_file(id, file_id, secret=None, **extra):
    """Stop an announcement."""
    return _send("stop_file", extra, id=id, file_id=file_id, secret=secret)


def stop_all_files(id, secret=None, **extra):
    """Stop every announcement of a room."""
    return _send("stop_all_files", extra, id=id, secret=secret)


def listannouncements(id, secret=None, **extra):
    """List a room's announcements."""
    return _send("listannouncements", extra, id=id, secret=secret)


def resetdecoder(**extra):
    """Reset this handle's decoder (487 unless joined)."""
    return _send("resetdecoder", extra)


def join(id, userid=None, display=None, muted=None, **extra):
    """Join a room with this handle (signalling only, no SDP); extra: codec, rtp={...}..."""
    return _send("join", extra, id=id, userid=userid, display=display, muted=muted)


def configure(**fields):
    """Change this handle's muted, display, quality, volume... (fields sent as given)."""
    return request("configure", **fields)


def changeroom(id, **extra):
    """Move this handle to another room."""
    return _send("changeroom", extra, id=id)


def leave(**extra):
    """Leave the room this handle joined."""
    return _send("leave", extra)


def events(timeout=1.0):
    """Print and return the queued Janus events (waits up to timeout s for a first one)."""
    return show(client().take_events(timeout))


INTERACTIVE = [greet, session, attach, keepalive, create, list, exists, listparticipants, destroy,
               edit, kick, mute, unmute, kick_all, mute_room, unmute_room, suspend, resume,
               allowed, enable_recording, rtp_forward, stop_rtp_forward, listforwarders, link, unlink,
               link_servers, unlink_servers, play_file,
               is_playing, stop_file, stop_all_files, listannouncements, resetdecoder, join,
               configure, changeroom, leave, events, request]


# -- script mode ---------------------------------------------------------------------------

def parse_value(text):
    """A command-line value: JSON when it parses as JSON (true, 16000, "16000", {...}), else text."""
    def no_constants(name):
        raise ValueError(name)  # NaN and Infinity are not JSON
    try:
        return json.loads(text, parse_constant=no_constants)
    except ValueError:
        return text


def parse_field(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, parse_value(value)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# Options accepted before or after the command; everything else is a field of the request.
OPTIONS = {"url": DEFAULT_URL, "admin_url": None, "admin_secret": None, "plugin": PLUGIN,
           "timeout": TIMEOUT, "field": None}

EPILOG = """\
exit codes: 0 success, 1 the plugin replied with error_code, 2 Janus replied with an error,
3 Janus cannot be reached, 4 no answer within --timeout, 64 bad usage.
Room ids are always sent as strings; --field key=value adds or overrides any body field
(value parsed as JSON when it parses, else a string), e.g. --field id=5 sends a number."""


def build_parser():
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--url", help=f"Janus HTTP API (default {DEFAULT_URL})")
    common.add_argument("--admin-url", help="send through the Admin API's message_plugin, "
                        "e.g. http://127.0.0.1:7088/admin")
    common.add_argument("--admin-secret", help="admin_secret for --admin-url")
    common.add_argument("--plugin", help=f"plugin package (default {PLUGIN})")
    common.add_argument("--timeout", type=float, help=f"seconds to wait for Janus (default {TIMEOUT:g})")
    common.add_argument("--field", action="append", type=parse_field, metavar="KEY=VALUE",
                        help="extra body field; repeatable")

    parser = Parser(prog="tester.py", parents=[common], epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    description="Send one request to janus.plugin.cm.audioroom and print its reply. "
                                "Without a command under `python3 -i`, start the interactive helper.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(function, *room_and_user):
        sub = commands.add_parser(function.__name__, parents=[common], epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  help=function.__doc__.splitlines()[0])
        if "room" in room_and_user:
            sub.add_argument("id", metavar="ID", help="room id (always a string)")
        if "user" in room_and_user:
            sub.add_argument("userid", metavar="USERID", type=parse_value, help="participant id")
        sub.set_defaults(func=function)
        return sub

    sub = command(create)
    sub.add_argument("id", metavar="ID", nargs="?", help="room id (always a string); "
                     "none: the plugin picks one")
    sub.add_argument("--description")
    sub.add_argument("--sampling", type=int, help="8000, 12000, 16000, 24000 or 48000")
    sub.add_argument("--secret")
    _permanent_option(sub)
    command(list)
    command(exists, "room")
    command(listparticipants, "room")
    sub = command(destroy, "room")
    sub.add_argument("--secret")
    _permanent_option(sub)
    sub = command(edit, "room")
    sub.add_argument("--secret")
    sub.add_argument("--new-description")
    sub.add_argument("--new-secret")
    sub.add_argument("--new-pin")
    sub.add_argument("--new-is-private", type=parse_value, metavar="true|false")
    _permanent_option(sub)
    for function in (kick, mute, unmute, suspend, resume):
        command(function, "room", "user").add_argument("--secret")
    for function in (kick_all, mute_room, unmute_room):
        command(function, "room").add_argument("--secret")
    sub = command(allowed, "room")
    sub.add_argument("action", metavar="ACTION", help="enable, disable, add or remove")
    sub.add_argument("allowed", metavar="TOKEN", nargs="*", help="tokens to add or remove")
    sub.add_argument("--secret")
    _permanent_option(sub)
    sub = command(enable_recording, "room")
    sub.add_argument("record", metavar="true|false", type=parse_value)
    sub.add_argument("--secret")
    sub.add_argument("--recording-pattern", help="name of the room's recordings from now on")
    sub = command(rtp_forward, "room")
    sub.add_argument("host", metavar="HOST", help="where the mix goes: an address or a name")
    sub.add_argument("port", metavar="PORT", type=int)
    sub.add_argument("--codec", help="opus (default), pcmu or pcma")
    sub.add_argument("--ptype", type=int, help="payload type (default 100 for Opus, 0/8 for G.711)")
    sub.add_argument("--ssrc", type=int)
    sub.add_argument("--srtp-suite", type=int, metavar="32|80")
    sub.add_argument("--srtp-crypto", help="base64 of the 30-byte SRTP master key and salt")
    _secret_and_key(sub)
    sub = command(stop_rtp_forward, "room")
    sub.add_argument("stream_id", metavar="STREAM_ID", type=parse_value)
    _secret_and_key(sub)
    command(listforwarders, "room").add_argument("--secret")
    _link_commands(commands)
    sub = command(play_file, "room")
    sub.add_argument("filename", metavar="FILENAME", help="relative to announcements_path")
    sub.add_argument("--file-id")
    sub.add_argument("--loop", action="store_const", const=True, help="play it until stopped")
    _secret_and_key(sub)
    for function in (is_playing, stop_file):
        sub = command(function, "room")
        sub.add_argument("file_id", metavar="FILE_ID")
        _secret_and_key(sub)
    _secret_and_key(command(stop_all_files, "room"))
    command(listannouncements, "room").add_argument("--secret")
    command(resetdecoder)
    for function in (join, changeroom):
        sub = command(function, "room")
        sub.add_argument("--userid", type=parse_value)
        sub.add_argument("--display")
        sub.add_argument("--muted", type=parse_value, metavar="true|false")
        sub.add_argument("--token", help="a token of the room's access list")
    commands.choices["join"].add_argument("--codec", help="opus, pcmu or pcma")
    sub = command(configure)
    sub.add_argument("--display")
    sub.add_argument("--muted", type=parse_value, metavar="true|false")
    command(leave)
    command(request).add_argument("request", metavar="NAME", help="request name; fields via --field")
    return parser


LINK_EPILOG = """\
Steps: 1. on the origin (--from), `link` (its port is returned); 2. on the edge (--to), `link`
with upstream: true, pointed at the origin's port; 3. on the origin, `link` again, pointed at the
edge's port. A step that fails closes the ends already opened and exits 1 with the plugin's error.
Here --timeout is the link's (seconds of silence before it is removed, 2-3600, default 10); the
seconds to wait for Janus can be given before the command: tester.py --timeout 20 link ...
""" + EPILOG


def _link_commands(commands):
    """`link` and `unlink`: both ends of a link between two servers (link_servers, unlink_servers)."""
    # Two servers, each by its own URL, through sessions: none of the common options but the
    # plugin's name apply after the command, and --timeout is the link's own.
    for name, function in (("link", link_servers), ("unlink", unlink_servers)):
        sub = commands.add_parser(name, epilog=LINK_EPILOG, argument_default=argparse.SUPPRESS,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  help=function.__doc__.splitlines()[0])
        sub.add_argument("--from", dest="from_url", metavar="URL_A", required=True,
                         help="the origin's HTTP API, e.g. http://10.0.0.1:8088/janus")
        sub.add_argument("--to", dest="to_url", metavar="URL_B", required=True,
                         help="the edge's HTTP API, e.g. http://10.0.0.2:8088/janus")
        sub.add_argument("id", metavar="ROOM", help="room id (always a string), the same on both servers")
        sub.add_argument("--secret", help="the room's secret (and the secret of rooms this creates)")
        sub.add_argument("--admin-key", help="the configured admin_key (create; link with lock_rtp_forward)")
        sub.set_defaults(func=function)
        if name == "unlink":
            sub.add_argument("--link-id", required=True, help="the link's id, as `link` printed it")
            continue
        sub.add_argument("--link-id", help="1-64 of A-Z a-z 0-9 . _ : - (default link-<8 random hex digits>)")
        sub.add_argument("--record", choices=RECORD_CHOICES,
                         help="which server records a room this creates (default origin)")
        sub.add_argument("--prebuffering", type=int, metavar="N",
                         help="packets each end queues, 1-5 (default 2)")
        sub.add_argument("--timeout", dest="link_timeout", type=int, metavar="S",
                         help="seconds without packets before an end removes the link, 2-3600 (default 10)")


def _secret_and_key(sub):
    """--secret, and --admin-key for the requests lock_rtp_forward and lock_play_file protect."""
    sub.add_argument("--secret")
    sub.add_argument("--admin-key", help="the configured admin_key (lock_rtp_forward, lock_play_file)")


def _permanent_option(sub):
    """--permanent: the room is saved to (or removed from) the plugin's configuration file."""
    sub.add_argument("--permanent", action="store_const", const=True,
                     help="also save the change in the plugin's configuration file")


def main(argv=None):
    """Run one command; return its exit code (None: stay in the interactive interpreter)."""
    global _client
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    options = {key: args.pop(key, default) for key, default in OPTIONS.items()}
    fields = dict(options.pop("field") or [])
    command, function = args.pop("command", None), args.pop("func", None)
    if _client is not None:
        _client.close()
    _client = Janus(**options)

    if command is None:
        if sys.flags.interactive:
            atexit.register(lambda: _client.close())
            sys.displayhook, sys.ps1 = _displayhook, _Prompt(getattr(sys, "ps1", ">>> "))
            greet()
            return None
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    kwargs = {key: value for key, value in args.items() if value is not None}
    if function in (link_servers, unlink_servers):
        if fields or options["admin_url"]:
            parser.error(f"{command} talks to two servers through --from and --to: "
                         "--field and --admin-url do not apply")
        if "link_timeout" in kwargs:
            kwargs["timeout"] = kwargs.pop("link_timeout")
    if function is allowed and kwargs.get("allowed") == []:
        del kwargs["allowed"]  # enable/disable name no tokens
    try:
        reply = function(**{**kwargs, **fields})
    except JanusError as e:
        show(e.reply)
        return EXIT_JANUS_ERROR
    except Unreachable as e:
        print(f"tester.py: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except NoAnswer as e:
        print(f"tester.py: {e}", file=sys.stderr)
        return EXIT_NO_ANSWER
    finally:
        _client.close()
    return EXIT_PLUGIN_ERROR if isinstance(reply, dict) and "error_code" in reply else EXIT_OK


if __name__ == "__main__":
    _code = main()
    if _code is not None:
        sys.exit(_code)
