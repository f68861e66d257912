"""Unit tests of test/tester.py: argument parsing, request bodies and exit codes.

A tiny fake Janus (http.server on 127.0.0.1, ephemeral port, in a thread) answers create,
attach, keepalive, destroy, message (synchronous success or ack + event), the long poll and the
Admin API's message_plugin, and records every request it receives.
Run: python3 -m pytest test/test_tester.py -q
"""

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tester  # noqa: E402

SESSION, HANDLE = 1111, 2222
ASYNC = {"join", "configure", "changeroom", "leave"}


class FakeJanus(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeJanusHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/janus"
        self.admin_url = f"http://127.0.0.1:{self.server_address[1]}/admin"
        self.received = []  # (method, path, JSON body or None)
        self.events = queue.Queue()
        self.janus_error = None  # when set, plugin messages get this Janus-level error
        self.silent = set()  # async requests that never get their event
        self.answer = lambda body: {"audioroom": "success", **{k: v for k, v in body.items()
                                                             if k in ("id", "userid")}}

    def messages(self):
        """The bodies of the plugin messages received, in order."""
        return [b["body"] for m, p, b in self.received if b and b.get("janus") == "message"]

    def janus_requests(self):
        return [b["janus"] for m, p, b in self.received if b]


class FakeJanusHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, payload, status=200):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        url = urlsplit(self.path)
        self.server.received.append(("GET", self.path, None))
        if url.path != f"/janus/{SESSION}":
            return self.reply({}, 404)
        maxev = int(parse_qs(url.query).get("maxev", ["1"])[0])
        try:  # Janus waits 30 s; the fake waits less to keep the tests quick
            events = [self.server.events.get(timeout=0.2)]
        except queue.Empty:
            return self.reply({"janus": "keepalive"})
        while len(events) < maxev and not self.server.events.empty():
            events.append(self.server.events.get_nowait())
        self.reply(events if maxev > 1 else events[0])

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(("POST", self.path, body))
        server, kind, tx = self.server, body.get("janus"), body.get("transaction")
        if self.path == "/janus" and kind == "create":
            return self.reply({"janus": "success", "transaction": tx, "data": {"id": SESSION}})
        if self.path == f"/janus/{SESSION}" and kind == "attach":
            return self.reply({"janus": "success", "session_id": SESSION, "transaction": tx,
                               "data": {"id": HANDLE}})
        if self.path == f"/janus/{SESSION}" and kind in ("keepalive", "destroy"):
            return self.reply({"janus": "ack" if kind == "keepalive" else "success",
                               "session_id": SESSION, "transaction": tx})
        if self.path == f"/janus/{SESSION}/{HANDLE}" and kind == "message":
            if server.janus_error:
                return self.reply({"janus": "error", "session_id": SESSION, "transaction": tx,
                                   "error": server.janus_error})
            request = body["body"].get("request")
            data = server.answer(body["body"])
            if request not in ASYNC:
                return self.reply({"janus": "success", "session_id": SESSION, "transaction": tx,
                                   "sender": HANDLE, "plugindata": {"plugin": tester.PLUGIN,
                                                                    "data": data}})
            self.reply({"janus": "ack", "session_id": SESSION, "transaction": tx})
            # Another participant's event first: the tester must skip it, not take it.
            server.events.put({"janus": "event", "session_id": SESSION, "sender": HANDLE,
                               "plugindata": {"plugin": tester.PLUGIN,
                                              "data": {"audioroom": "event", "leaving": 7}}})
            if request not in server.silent:
                server.events.put({"janus": "event", "session_id": SESSION, "sender": HANDLE,
                                   "transaction": tx,
                                   "plugindata": {"plugin": tester.PLUGIN, "data": data}})
            return None
        if self.path == "/admin" and kind == "message_plugin":
            if body.get("admin_secret") != "s3cret":
                return self.reply({"janus": "error", "transaction": tx, "error": {
                    "code": 403, "reason": "Unauthorized request (wrong or missing secret/token)"}})
            return self.reply({"janus": "success", "transaction": tx,
                               "response": server.answer(body["request"])})
        return self.reply({"janus": "error", "transaction": tx,
                           "error": {"code": 458, "reason": f"No such session ({self.path})"}})


@pytest.fixture
def janus():
    server = FakeJanus()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run(capsys, *argv):
    """tester.main(argv) in process: (exit code, stdout parsed as JSON or None, stderr)."""
    code = tester.main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- argument parsing ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("true", True), ("16000", 16000), ('"16000"', "16000"), ("null", None), ("[1, 2]", [1, 2]),
    ('{"port": 5000}', {"port": 5000}), ("café ☕", "café ☕"), ("NaN", "NaN"), ("", ""),
    ("a=b", "a=b"),
])
def test_values_are_json_when_they_parse_else_strings(text, value):
    assert tester.parse_value(text) == value


def test_fields_split_at_the_first_equals_sign():
    assert tester.parse_field("display=a=b") == ("display", "a=b")
    assert tester.parse_field("is_private=true") == ("is_private", True)


def test_the_command_line_parses_into_options_and_request_fields():
    args = tester.build_parser().parse_args(
        ["create", "café ☕", "--sampling", "16000", "--field", "is_private=true",
         "--url", "http://x/janus", "--field", "secret=s"])
    assert args.func is tester.create
    assert (args.id, args.sampling, args.description) == ("café ☕", 16000, None)
    assert args.field == [("is_private", True), ("secret", "s")]
    assert args.url == "http://x/janus"

    args = tester.build_parser().parse_args(["--admin-url", "http://a/admin", "kick", "r", "42"])
    assert (args.admin_url, args.id, args.userid) == ("http://a/admin", "r", 42)
    assert tester.build_parser().parse_args(["exists", "123"]).id == "123"  # never a number


@pytest.mark.parametrize("argv", [
    ["list", "--field", "novalue"], ["list", "--field", "=x"], ["exists"], ["nosuchcommand"],
    ["create", "--sampling", "high"], [],
])
def test_bad_usage_exits_64_not_2(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        code = tester.main(argv)
        raise SystemExit(code)
    assert exit.value.code == tester.EXIT_USAGE == 64
    assert capsys.readouterr().err


# -- requests and exit codes against the fake Janus ---------------------------------------------

def test_create_sends_the_body_and_prints_the_reply(janus, capsys):
    janus.answer = lambda body: {"audioroom": "created", "id": body["id"]}
    code, out, err = run(capsys, "--url", janus.url, "create", "myroom", "--sampling", "16000",
                         "--field", "is_private=true")
    assert code == 0, err
    assert janus.messages() == [
        {"request": "create", "id": "myroom", "sampling": 16000, "is_private": True}]
    assert out == {"audioroom": "created", "id": "myroom"}
    assert janus.janus_requests() == ["create", "attach", "message", "destroy"]


def test_fields_add_and_override_anything(janus, capsys):
    run(capsys, "--url", janus.url, "create", "--description", "café ☕")
    run(capsys, "--url", janus.url, "exists", "x", "--field", "id=5")
    run(capsys, "--url", janus.url, "edit", "r", "--new-is-private", "false", "--secret", "s")
    run(capsys, "--url", janus.url, "request", "bogus", "--field", "id=null")
    run(capsys, "--url", janus.url, "list", "--field", "request=nope")
    assert janus.messages() == [
        {"request": "create", "description": "café ☕"},
        {"request": "exists", "id": 5},
        {"request": "edit", "id": "r", "secret": "s", "new_is_private": False},
        {"request": "bogus", "id": None},
        {"request": "nope"},
    ]


def test_a_reply_with_error_code_exits_1(janus, capsys):
    error = {"audioroom": "event", "error_code": 485, "error": "No such room (café ☕)"}
    janus.answer = lambda body: error
    code, out, _ = run(capsys, "--url", janus.url, "destroy", "café ☕", "--secret", "x")
    assert (code, out) == (1, error)
    assert janus.messages() == [{"request": "destroy", "id": "café ☕", "secret": "x"}]


def test_a_janus_error_is_printed_and_exits_2(janus, capsys):
    janus.janus_error = {"code": 460, "reason": "No such plugin 'janus.plugin.cm.audioroom'"}
    code, out, _ = run(capsys, "--url", janus.url, "list")
    assert code == 2
    assert out["janus"] == "error" and out["error"] == janus.janus_error


def test_an_http_error_without_a_janus_reply_exits_2(janus, capsys):
    code, out, _ = run(capsys, "--url", janus.url.replace("/janus", "/nowhere"), "list")
    assert code == 2 and out["janus"] == "error"


def test_connection_refused_exits_3_with_a_clear_message(capsys):
    code, out, err = run(capsys, "--url", f"http://127.0.0.1:{free_port()}/janus", "list")
    assert (code, out) == (3, None)
    assert "cannot reach Janus" in err and "refused" in err


def test_join_waits_for_the_event_with_its_transaction(janus, capsys):
    janus.answer = lambda body: {"audioroom": "joined", "id": body["id"], "userid": 9,
                                 "participants": []}
    code, out, err = run(capsys, "--url", janus.url, "join", "café ☕", "--display", "Zoë",
                         "--muted", "true")
    assert code == 0, err
    assert out == {"audioroom": "joined", "id": "café ☕", "userid": 9, "participants": []}
    assert janus.messages() == [
        {"request": "join", "id": "café ☕", "display": "Zoë", "muted": True}]
    assert any(method == "GET" and "maxev=" in path for method, path, _ in janus.received)


def test_an_async_request_without_an_answer_exits_4(janus, capsys):
    janus.silent.add("leave")
    code, out, err = run(capsys, "--url", janus.url, "--timeout", "0.5", "leave")
    assert (code, out) == (4, None)
    assert "no answering event" in err


def test_admin_mode_uses_message_plugin_and_no_session(janus, capsys):
    janus.answer = lambda body: {"audioroom": "success", "list": []}
    code, out, err = run(capsys, "--admin-url", janus.admin_url, "--admin-secret", "s3cret",
                         "list", "--field", "admin_key=k")
    assert code == 0, err
    assert out == {"audioroom": "success", "list": []}
    [(method, path, body)] = janus.received
    assert (method, path) == ("POST", "/admin")
    assert set(body) == {"janus", "plugin", "request", "admin_secret", "transaction"}
    assert body["janus"] == "message_plugin"
    assert body["plugin"] == "janus.plugin.cm.audioroom"
    assert body["request"] == {"request": "list", "admin_key": "k"}
    assert body["admin_secret"] == "s3cret"

    code, out, _ = run(capsys, "--admin-url", janus.admin_url, "--admin-secret", "wrong", "list")
    assert code == 2 and out["error"]["code"] == 403


# -- interactive functions -----------------------------------------------------------------------

def test_interactive_functions_print_and_return_the_reply(janus, capsys):
    tester._client = tester.Janus(janus.url)
    try:
        reply = tester.kick("r", 42, secret="s")
        assert reply == {"audioroom": "success", "id": "r", "userid": 42}
        assert json.loads(capsys.readouterr().out) == reply
        assert tester.configure(muted=True, display=None) == {"audioroom": "success"}
        capsys.readouterr()
        assert tester.events(timeout=2) == [
            {"janus": "event", "session_id": SESSION, "sender": HANDLE,
             "plugindata": {"plugin": tester.PLUGIN,
                            "data": {"audioroom": "event", "leaving": 7}}}]
        assert tester.events(timeout=0) == []
    finally:
        tester._client.close()
    assert janus.messages() == [{"request": "kick", "id": "r", "userid": 42, "secret": "s"},
                                {"request": "configure", "muted": True, "display": None}]


def test_the_session_is_kept_alive_in_the_background(janus, capsys, monkeypatch):
    monkeypatch.setattr(tester, "KEEPALIVE_EVERY", 0.05)
    tester._client = tester.Janus(janus.url)
    try:
        assert tester.session() == SESSION
        deadline = time.monotonic() + 5
        while janus.janus_requests().count("keepalive") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        tester._client.close()
    assert janus.janus_requests().count("keepalive") >= 2
    assert "destroy" in janus.janus_requests()


def test_the_script_prints_utf8_json_and_exits_with_its_code(janus):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    done = subprocess.run([sys.executable, os.path.join(HERE, "tester.py"), "--url", janus.url,
                           "exists", "café ☕"], capture_output=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "café ☕" in done.stdout.decode("utf-8")
    assert json.loads(done.stdout) == {"audioroom": "success", "id": "café ☕"}
    assert janus.janus_requests()[-1] == "destroy"


# -- operator controls -----------------------------------------------------------------------

def test_operator_commands_send_their_bodies(janus, capsys):
    runs = [
        ["kick_all", "café ☕", "--secret", "s"],
        ["mute_room", "r"],
        ["unmute_room", "r", "--secret", "s"],
        ["suspend", "r", "7", "--secret", "s"],
        ["resume", "r", "7"],
        ["allowed", "r", "enable", "--secret", "s"],
        ["allowed", "r", "add", "gold", "silver", "--permanent"],
        ["enable_recording", "r", "false"],
        ["enable_recording", "r", "true", "--recording-pattern", "r2-#{id}", "--secret", "s"],
        ["create", "p", "--permanent"],
        ["edit", "p", "--new-description", "d", "--permanent"],
        ["destroy", "p", "--permanent"],
        ["join", "r", "--token", "gold"],
    ]
    for argv in runs:
        code, _, err = run(capsys, "--url", janus.url, *argv)
        assert code == 0, (argv, err)
    assert janus.messages() == [
        {"request": "kick_all", "id": "café ☕", "secret": "s"},
        {"request": "mute_room", "id": "r"},
        {"request": "unmute_room", "id": "r", "secret": "s"},
        {"request": "suspend", "id": "r", "userid": 7, "secret": "s"},
        {"request": "resume", "id": "r", "userid": 7},
        {"request": "allowed", "id": "r", "action": "enable", "secret": "s"},
        {"request": "allowed", "id": "r", "action": "add", "allowed": ["gold", "silver"],
         "permanent": True},
        {"request": "enable_recording", "id": "r", "record": False},
        {"request": "enable_recording", "id": "r", "record": True, "secret": "s",
         "recording_pattern": "r2-#{id}"},
        {"request": "create", "id": "p", "permanent": True},
        {"request": "edit", "id": "p", "new_description": "d", "permanent": True},
        {"request": "destroy", "id": "p", "permanent": True},
        {"request": "join", "id": "r", "token": "gold"},
    ]


def test_operator_functions_work_interactively_and_through_the_admin_api(janus, capsys):
    tester._client = tester.Janus(admin_url=janus.admin_url, admin_secret="s3cret")
    try:
        assert tester.mute_room("r", secret="s") == {"audioroom": "success", "id": "r"}
        tester.allowed("r", "remove", ["gold"])
        tester.enable_recording("r", True)
        tester.suspend("r", 7, secret="s")
        tester.kick_all("r", permanent=None)
    finally:
        tester._client.close()
    capsys.readouterr()
    bodies = [b["request"] for m, p, b in janus.received if b and b.get("janus") == "message_plugin"]
    assert bodies == [
        {"request": "mute_room", "id": "r", "secret": "s"},
        {"request": "allowed", "id": "r", "action": "remove", "allowed": ["gold"]},
        {"request": "enable_recording", "id": "r", "record": True},
        {"request": "suspend", "id": "r", "userid": 7, "secret": "s"},
        {"request": "kick_all", "id": "r", "permanent": None},
    ]
    assert {f.__name__ for f in tester.INTERACTIVE} >= {
        "kick_all", "mute_room", "unmute_room", "suspend", "resume", "allowed", "enable_recording"}


# -- media in and out of a room: forwarders and announcements --------------------------------

def test_forwarder_and_announcement_commands_send_their_bodies(janus, capsys):
    runs = [
        ["rtp_forward", "café ☕", "10.0.0.7", "5002", "--secret", "s"],
        ["rtp_forward", "r", "stream.example", "6000", "--codec", "pcmu", "--ptype", "0",
         "--ssrc", "77", "--srtp-suite", "80", "--srtp-crypto", "a2V5", "--admin-key", "k"],
        ["stop_rtp_forward", "r", "1640851027", "--secret", "s"],
        ["listforwarders", "r"],
        ["play_file", "r", "welcome.wav", "--file-id", "hello", "--loop", "--admin-key", "k"],
        ["is_playing", "r", "hello"],
        ["stop_file", "r", "hello", "--secret", "s"],
        ["stop_all_files", "r"],
        ["listannouncements", "r", "--secret", "s"],
        ["join", "r", "--codec", "pcmu"],
    ]
    for argv in runs:
        code, _, err = run(capsys, "--url", janus.url, *argv)
        assert code == 0, (argv, err)
    assert janus.messages() == [
        {"request": "rtp_forward", "id": "café ☕", "host": "10.0.0.7", "port": 5002, "secret": "s"},
        {"request": "rtp_forward", "id": "r", "host": "stream.example", "port": 6000, "codec": "pcmu",
         "ptype": 0, "ssrc": 77, "srtp_suite": 80, "srtp_crypto": "a2V5", "admin_key": "k"},
        {"request": "stop_rtp_forward", "id": "r", "stream_id": 1640851027, "secret": "s"},
        {"request": "listforwarders", "id": "r"},
        {"request": "play_file", "id": "r", "filename": "welcome.wav", "file_id": "hello", "loop": True,
         "admin_key": "k"},
        {"request": "is_playing", "id": "r", "file_id": "hello"},
        {"request": "stop_file", "id": "r", "file_id": "hello", "secret": "s"},
        {"request": "stop_all_files", "id": "r"},
        {"request": "listannouncements", "id": "r", "secret": "s"},
        {"request": "join", "id": "r", "codec": "pcmu"},
    ]


def test_forwarder_and_announcement_functions_work_through_the_admin_api(janus, capsys):
    tester._client = tester.Janus(admin_url=janus.admin_url, admin_secret="s3cret")
    try:
        tester.rtp_forward("r", "127.0.0.1", 5002, codec="pcma")
        tester.listforwarders("r", secret="s")
        tester.play_file("r", "music.opus", loop=True)
        tester.stop_all_files("r")
    finally:
        tester._client.close()
    capsys.readouterr()
    bodies = [b["request"] for m, p, b in janus.received if b and b.get("janus") == "message_plugin"]
    assert bodies == [
        {"request": "rtp_forward", "id": "r", "host": "127.0.0.1", "port": 5002, "codec": "pcma"},
        {"request": "listforwarders", "id": "r", "secret": "s"},
        {"request": "play_file", "id": "r", "filename": "music.opus", "loop": True},
        {"request": "stop_all_files", "id": "r"},
    ]
    assert {f.__name__ for f in tester.INTERACTIVE} >= {
        "rtp_forward", "stop_rtp_forward", "listforwarders", "play_file", "is_playing", "stop_file",
        "stop_all_files", "listannouncements"}


# -- links between two servers ---------------------------------------------------------------------

class FakeRoomServer:
    """A fake Janus's plugin that keeps rooms and links as the real one answers them."""

    def __init__(self, janus, port, rooms=None):
        self.rooms = dict(rooms or {})  # id -> sampling rate
        self.links = {}
        self.port = port
        self.fail = {}  # request name -> error reply
        janus.answer = self.answer

    def answer(self, body):
        request, room = body.get("request"), body.get("id")
        if request in self.fail:
            return self.fail[request]
        if request == "exists":
            return {"audioroom": "success", "id": room, "exists": room in self.rooms}
        if request == "create":
            self.rooms[room] = body.get("sampling", 48000)
            return {"audioroom": "created", "id": room}
        if request == "list":
            return {"audioroom": "success", "list": [
                {"id": r, "sampling_rate": rate, "num_participants": 0} for r, rate in self.rooms.items()]}
        if request == "link":
            self.links[body["link_id"]] = body.get("rtp")
            return {"audioroom": "linked", "id": room, "link_id": body["link_id"],
                    "rtp": {"ip": "10.0.0.9", "port": self.port, "payload_type": 100}}
        if request == "unlink":
            if self.links.pop(body["link_id"], "none") == "none":
                return {"audioroom": "event", "error_code": 497, "error": f"No such link ({body['link_id']}) in room {room}"}
            return {"audioroom": "unlinked", "id": room, "link_id": body["link_id"]}
        return {"audioroom": "event", "error_code": 482, "error": f"Unknown request ({request})"}


@pytest.fixture
def two_janus(janus):
    other = FakeJanus()
    thread = threading.Thread(target=other.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield janus, other
    other.shutdown()
    other.server_close()


def test_link_parses_two_urls_and_the_links_own_timeout():
    args = tester.build_parser().parse_args(
        ["--timeout", "20", "link", "--from", "http://a/janus", "--to", "http://b/janus", "123",
         "--timeout", "3", "--prebuffering", "4", "--record", "both", "--link-id", "x:1"])
    assert args.func is tester.link_servers
    assert (args.from_url, args.to_url, args.id) == ("http://a/janus", "http://b/janus", "123")
    assert (args.timeout, args.link_timeout, args.prebuffering) == (20, 3, 4)
    assert (args.record, args.link_id) == ("both", "x:1")
    args = tester.build_parser().parse_args(["unlink", "--from", "a", "--to", "b", "r", "--link-id", "l"])
    assert args.func is tester.unlink_servers and args.link_id == "l"


@pytest.mark.parametrize("argv", [
    ["link", "--to", "b", "r"], ["link", "--from", "a", "--to", "b", "r", "--record", "edges"],
    ["unlink", "--from", "a", "--to", "b", "r"], ["link", "--from", "a", "--to", "b", "r", "--field", "x=1"],
])
def test_bad_link_usage_exits_64(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        tester.main(argv)
    assert exit.value.code == 64


def test_link_creates_the_rooms_at_the_origins_rate_and_takes_the_three_steps(two_janus, capsys):
    a, b = two_janus
    origin, edge = FakeRoomServer(a, 20001, {"town": 16000}), FakeRoomServer(b, 20002)
    code, out, err = run(capsys, "link", "--from", a.url, "--to", b.url, "town", "--link-id", "t1",
                         "--secret", "s", "--timeout", "3", "--prebuffering", "2")
    assert code == 0, err
    assert [m["request"] for m in a.messages()] == ["exists", "list", "link", "link"]
    step1, step3 = a.messages()[2:]
    assert step1 == {"request": "link", "id": "town", "link_id": "t1", "peer": b.url, "prebuffering": 2,
                     "timeout": 3, "secret": "s"}
    assert step3 == {"request": "link", "id": "town", "link_id": "t1", "secret": "s",
                     "rtp": {"ip": "10.0.0.9", "port": 20002, "payload_type": 100}}
    assert b.messages() == [
        {"request": "exists", "id": "town"},
        {"request": "create", "id": "town", "record": False, "secret": "s", "sampling": 16000},
        {"request": "list"},
        {"request": "link", "id": "town", "link_id": "t1", "upstream": True, "peer": a.url,
         "rtp": {"ip": "10.0.0.9", "port": 20001, "payload_type": 100}, "prebuffering": 2, "timeout": 3,
         "secret": "s"}]
    assert out["audioroom"] == "linked" and out["link_id"] == "t1"
    assert (out["from"]["rtp"]["port"], out["to"]["rtp"]["port"]) == (20001, 20002)
    assert (out["from"]["created"], out["to"]["created"], out["from"]["sampling_rate"]) == (False, True, 16000)
    assert "10.0.0.9:20001" in err and "10.0.0.9:20002" in err
    assert origin.links == {"t1": step3["rtp"]} and "t1" in edge.links


def test_link_records_where_asked_and_picks_an_id(two_janus, capsys):
    a, b = two_janus
    FakeRoomServer(a, 20001), FakeRoomServer(b, 20002)
    code, out, err = run(capsys, "link", "--from", a.url, "--to", b.url, "r", "--record", "edge")
    assert code == 0, err
    assert a.messages()[1] == {"request": "create", "id": "r", "record": False}
    assert b.messages()[1] == {"request": "create", "id": "r", "record": True, "sampling": 48000}
    assert out["link_id"].startswith("link-") and len(out["link_id"]) == len("link-") + 8


def test_a_failed_step_exits_1_with_the_plugins_error_and_closes_the_opened_end(two_janus, capsys):
    a, b = two_janus
    origin, edge = FakeRoomServer(a, 20001, {"r": 48000}), FakeRoomServer(b, 20002, {"r": 48000})
    error = {"audioroom": "event", "error_code": 498,
             "error": "Room r already has an upstream link (up): a room joins one tree"}
    edge.fail["link"] = error
    code, out, err = run(capsys, "link", "--from", a.url, "--to", b.url, "r", "--link-id", "x")
    assert (code, out) == (1, error)
    assert "step 2" in err and "498" in err
    assert a.messages()[-1] == {"request": "unlink", "id": "r", "link_id": "x"}
    assert origin.links == {}


def test_unlink_closes_both_ends_and_fails_with_a_missing_one(two_janus, capsys):
    a, b = two_janus
    origin, edge = FakeRoomServer(a, 20001, {"r": 48000}), FakeRoomServer(b, 20002, {"r": 48000})
    origin.links["x"], edge.links["x"] = None, None
    code, out, err = run(capsys, "unlink", "--from", a.url, "--to", b.url, "r", "--link-id", "x", "--secret", "s")
    assert code == 0, err
    assert out == {"audioroom": "unlinked", "id": "r", "link_id": "x", "from": a.url, "to": b.url}
    assert a.messages() == b.messages() == [{"request": "unlink", "id": "r", "link_id": "x", "secret": "s"}]
    code, out, _ = run(capsys, "unlink", "--from", a.url, "--to", b.url, "r", "--link-id", "x")
    assert code == 1 and out["error_code"] == 497
    assert len(a.messages()) == len(b.messages()) == 2, "both ends are tried"


def test_link_functions_send_single_requests_on_the_current_server(janus, capsys):
    tester._client = tester.Janus(janus.url)
    try:
        tester.link("r", link_id="x", rtp={"ip": "10.0.0.1", "port": 5000}, upstream=True)
        tester.unlink("r", "x", secret="s")
    finally:
        tester._client.close()
    capsys.readouterr()
    assert janus.messages() == [
        {"request": "link", "id": "r", "link_id": "x", "rtp": {"ip": "10.0.0.1", "port": 5000}, "upstream": True},
        {"request": "unlink", "id": "r", "link_id": "x", "secret": "s"}]
    assert {f.__name__ for f in tester.INTERACTIVE} >= {"link", "unlink", "link_servers", "unlink_servers"}
