#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into test/fuzz/seeds/<target>/ (test/fuzz/README.md).

The seeds are the requests, packets and names of the unit tests (src/api/dispatch_tests.rs,
controls_tests.rs and stress_tests.rs, src/media/*.rs, src/archive/names.rs,
src/conference/config.rs) in each target's input format, so the fuzzer starts from inputs
that reach deep. Run it after a target's format changes (delete the target's seeds folder
first); the seeds are committed, the corpus the fuzzer grows from them is not.
"""
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

# A 20 ms Opus CELT frame of silence, as the unit tests send it.
OPUS_SILENCE = bytes([0xF8, 0xFF, 0xFE])
# Made-up SILK-only (TOC config 1) and hybrid (config 13) frames: libopus may call them garbage,
# but media/opus_vad.rs reads a verdict from their first bits.
SILK_ACTIVE = bytes([0x08, 0x0B, 0xE4, 0x51, 0x83, 0x0A, 0x77, 0x3C])
SILK_QUIET = bytes([0x08, 0x9B, 0xE4, 0x51, 0x83, 0x0A, 0x77, 0x3C])
HYBRID = bytes([0x68, 0x41, 0x0F, 0x22, 0x9C, 0x01, 0xFE, 0x33, 0x70])


def rtp(seq, ts=None, pt=111, ssrc=7, payload=OPUS_SILENCE, marker=False, ext=None, csrcs=0,
        padding=0):
    first = 0x80 | csrcs | (0x10 if ext is not None else 0) | (0x20 if padding else 0)
    header = struct.pack("!BBHII", first, pt | (0x80 if marker else 0), seq & 0xFFFF,
                         (960 * seq if ts is None else ts) & 0xFFFFFFFF, ssrc)
    body = b"\xcc" * (4 * csrcs)
    if ext is not None:
        body += ext
    tail = b""
    if padding:
        tail = b"\x00" * (padding - 1) + bytes([padding])
    return header + body + payload + tail


def level_ext(level, ext_id=1):
    """A one-byte (0xBEDE) header extension with an RFC 6464 level."""
    return bytes([0xBE, 0xDE, 0, 1, (ext_id << 4), 0x80 | level, 0, 0])


def write(target, name, data):
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- requests: lines of <action><session><text> (fuzz_targets/requests.rs) ------------------

def line(action, session, body):
    text = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False)
    if isinstance(text, str):
        text = text.encode()
    return bytes([ord("0") + action, ord("0") + session]) + text


def script(*lines):
    return b"\n".join(lines)


def requests_seeds():
    d = lambda s, body: line(0, s, body)          # handle_message, no JSEP
    offer = lambda s, body: line(1, s, body)      # with an SDP offer
    adm = lambda body: line(3, 0, body)           # Admin API
    setup = lambda s: line(4, s, b"")
    hangup = lambda s: line(5, s, b"")

    def packet(s, level, data):
        # The session byte is the session (mod 4) and, with its high bit, the level: a level
        # rounded down to one whose remainder names the session.
        param = s if level is None else 0x80 | (level - level % 4 + s)
        return bytes([ord("6"), param]) + data
    renew = lambda s: line(7, s, b"")
    tick = line(8, 0, b"")
    rtp_ok = lambda seq: rtp(seq).replace(b"\n", b"\x0b")

    seeds = {
        "list": [d(0, {"request": "list"}), adm({"request": "list"}), adm({"request": "stats"})],
        "create-every-field": [d(0, {
            "request": "create", "id": "café ☕", "description": "Team call", "secret": "s3cret",
            "pin": "1234", "is_private": True, "record": False, "audiolevel_event": True,
            "allow_rtp_participants": True, "rtp_symmetric": True, "speech_level": 40,
            "speech_hangover": 300, "max_speakers": 3, "mix_all": False,
            "audio_active_packets": 25, "audio_level_average": 40, "default_prebuffering": 6,
            "sampling": 16000, "allowed": ["k7Qm"]}),
            d(0, {"request": "exists", "id": "café ☕"}),
            d(1, {"request": "listparticipants", "id": "café ☕"})],
        "create-permanent": [d(0, {"request": "create", "id": "p", "permanent": True,
                                   "sampling_rate": 48000}),
                             d(0, {"request": "edit", "id": "p", "new_description": "x",
                                   "new_secret": "n", "new_pin": "", "new_is_private": False,
                                   "permanent": True}),
                             d(0, {"request": "destroy", "id": "p", "secret": "n",
                                   "permanent": True})],
        "create-no-id": [d(0, {"request": "create"}), d(0, {"request": "create", "id": "r"})],
        "join-configure-leave": [
            offer(1, {"request": "join", "id": "r", "display": "Ann", "userid": 7}),
            setup(1),
            d(1, {"request": "configure", "muted": True, "volume": 150, "quality": 10,
                  "display": "Ann B", "prebuffer": 4, "bitrate": 24000, "expected_loss": 20}),
            d(1, {"request": "configure", "muted": False}),
            d(1, {"request": "resetdecoder"}),
            d(1, {"request": "leave"})],
        "join-two-talk": [
            offer(0, {"request": "join", "id": "r", "userid": 1}),
            offer(1, {"request": "join", "id": "r", "userid": 2, "display": "B"}),
            setup(0), setup(1),
            packet(0, 30, rtp_ok(1)), packet(1, 30, rtp_ok(1)),
            tick, packet(0, None, rtp_ok(2)), packet(0, 127, rtp_ok(3)), tick, tick,
            d(2, {"request": "listparticipants", "id": "r"}),
            hangup(0), renew(1)],
        "changeroom": [
            offer(0, {"request": "join", "id": "r"}),
            offer(0, {"request": "changeroom", "id": "s", "pin": "pin", "display": "moved"}),
            d(0, {"request": "changeroom", "id": "r"})],
        "moderation": [
            offer(0, {"request": "join", "id": "s", "pin": "pin", "userid": 7}),
            offer(1, {"request": "join", "id": "s", "pin": "pin", "secret": "sec", "userid": 8}),
            d(2, {"request": "mute", "id": "s", "secret": "sec", "userid": 7}),
            d(2, {"request": "unmute", "id": "s", "secret": "sec", "userid": 7}),
            d(2, {"request": "suspend", "id": "s", "secret": "sec", "userid": 7}),
            d(2, {"request": "resume", "id": "s", "secret": "sec", "userid": 7}),
            d(2, {"request": "mute_room", "id": "s", "secret": "sec"}),
            d(2, {"request": "unmute_room", "id": "s", "secret": "sec"}),
            d(2, {"request": "kick", "id": "s", "secret": "sec", "userid": 7}),
            d(2, {"request": "kick_all", "id": "s", "secret": "sec"})],
        "allowed": [
            d(0, {"request": "allowed", "id": "s", "secret": "sec", "action": "add",
                  "allowed": ["k7Qm", "zz9"]}),
            d(0, {"request": "allowed", "id": "s", "secret": "sec", "action": "enable"}),
            offer(1, {"request": "join", "id": "s", "pin": "pin", "token": "zz9"}),
            d(0, {"request": "allowed", "id": "s", "secret": "sec", "action": "remove",
                  "allowed": ["zz9"], "permanent": True}),
            d(0, {"request": "allowed", "id": "s", "secret": "sec", "action": "disable"})],
        "recording": [
            d(0, {"request": "create", "id": "rec", "record": True,
                  "record_participants": True}),
            offer(1, {"request": "join", "id": "rec"}), setup(1), tick, tick,
            d(0, {"request": "enable_recording", "id": "rec", "record": False}),
            d(0, {"request": "enable_recording", "id": "rec", "record": True}),
            d(0, {"request": "destroy", "id": "rec"})],
        "deep-json": [
            d(0, '{"request":"exists","id":' + "[" * 300 + "1" + "]" * 300 + "}"),
            d(0, '{"request":"join","id":"s","pin":"pin","rtp":{"ip":"10.0.0.1","port":9,'
                 '"x":' + "[" * 40 + "]" * 40 + "}}")],
        "plain-rtp": [
            d(0, {"request": "join", "id": "s", "pin": "pin", "display": "sip",
                  "rtp": {"ip": "127.0.0.1", "port": 5000, "payload_type": 111,
                          "audiolevel_ext": 1, "fec": True}}),
            tick, d(0, {"request": "configure", "volume": 80}), tick,
            d(0, {"request": "leave"})],
        "plain-rtp-symmetric": [
            d(0, {"request": "create", "id": "sym", "allow_rtp_participants": True,
                  "rtp_symmetric": True}),
            d(0, {"request": "join", "id": "sym", "rtp": {"ip": "::1", "port": 6000}}),
            renew(0)],
        "errors": [
            b"00", d(0, "not json"), d(0, "[]"), d(0, {"request": 5}), d(0, {"request": "nope"}),
            d(0, {"request": "join"}), d(0, {"request": "join", "id": ""}),
            d(0, {"request": "join", "id": "r", "rtp": {"ip": "x", "port": 0}}),
            d(0, {"request": "create", "id": "x", "sampling": 44100}),
            line(2, 0, json.dumps({"request": "join", "id": "r"})),
            adm({"request": "join", "id": "r"}),
            d(0, {"request": "kick", "id": "r", "userid": 9007199254740993})],
    }
    for name, lines in seeds.items():
        write("requests", name, script(*lines))


# --- rtp_voice: <mode> <setup> then ops (fuzz_targets/rtp_voice.rs) -------------------------

def rtp_voice_seeds():
    def dgram(data, early=0):
        return bytes([(early << 2) | 0, len(data)]) + data

    def tick(rule, late=16):
        return bytes([(late << 2) | 2, rule])

    speaking, mix_all = 0x80, 0x40
    # setup: rate index in the low bits (48000 = 4), level id 1 in bits 3..6.
    setup48 = 4 | (1 << 3)
    steady = b"".join(dgram(rtp(i, payload=OPUS_SILENCE)) + tick(speaking) for i in range(12))
    write("rtp_voice", "steady-adaptive", bytes([0x00, setup48]) + steady)
    write("rtp_voice", "steady-fixed-3", bytes([0x83, setup48]) + steady)
    write("rtp_voice", "fixed-0", bytes([0x80, 2]) + steady)
    lossy = b"".join(dgram(rtp(i, payload=SILK_ACTIVE)) + tick(mix_all)
                     for i in range(20) if i % 4 != 2)
    write("rtp_voice", "loss-fec", bytes([0x00, setup48]) + lossy)
    reorder = b"".join(dgram(rtp(i)) for i in (3, 1, 2, 0, 5, 4)) + tick(speaking) * 8
    write("rtp_voice", "reordered", bytes([0x85, setup48]) + reorder)
    levels = b"".join(dgram(rtp(i, ext=level_ext(127 if i % 3 else 20),
                                payload=SILK_QUIET if i % 2 else SILK_ACTIVE))
                      + tick(40) for i in range(15))
    write("rtp_voice", "levels-gate", bytes([0x00, setup48]) + levels)
    restart = (b"".join(dgram(rtp(i)) + tick(speaking) for i in range(5))
               + bytes([3 | (4 << 2)])  # a pause of a second
               + b"".join(dgram(rtp(i + 40000, ssrc=9)) + tick(speaking) for i in range(5))
               + bytes([3 | (2 << 2)])  # queue reset
               + b"".join(dgram(rtp(i)) + tick(0) for i in range(3)))
    write("rtp_voice", "restart-ssrc", bytes([0x00, 2 | (1 << 3)]) + restart)
    jitter = b"".join(dgram(rtp(i), early=(i * 7) % 64) + tick(speaking, late=(i * 13) % 64)
                      for i in range(30))
    write("rtp_voice", "jitter", bytes([0x00, setup48]) + jitter)
    hybrid = b"".join(dgram(rtp(i, payload=HYBRID, padding=4, csrcs=1)) + tick(mix_all)
                      for i in range(6))
    write("rtp_voice", "hybrid-csrc-padding", bytes([0x00, 3]) + hybrid)
    modes = (b"".join(dgram(rtp(i)) + tick(speaking) for i in range(4))
             + bytes([3 | (1 << 2), 5]) + b"".join(dgram(rtp(i + 4)) + tick(speaking)
                                                for i in range(8))
             + bytes([3 | (0 << 2)]) + bytes([3 | (3 << 2)]) + tick(speaking) * 3)
    write("rtp_voice", "mode-changes", bytes([0x00, setup48]) + modes)


# --- plain_rtp: <sources> <pt> <level id> then <flags> <len> <bytes> -------------------------

def plain_rtp_seeds():
    def d(data, flags=0):
        return bytes([flags, len(data)]) + data

    declared = bytes([0, 111, 0])
    latch = bytes([1, 111, 1])
    write("plain_rtp", "declared", declared + b"".join(d(rtp(i)) for i in range(5))
          + d(b"not rtp") + d(rtp(5, pt=0)))
    write("plain_rtp", "foreign", declared + d(rtp(1), flags=1) + d(rtp(2)))
    write("plain_rtp", "latch", latch + d(b"garbage first", flags=1) + d(rtp(1), flags=1)
          + d(rtp(2)) + d(rtp(3, ext=level_ext(30)), flags=3))
    write("plain_rtp", "bounded-drains", declared + b"".join(
        d(rtp(i), flags=4 | ((i % 9) << 3)) for i in range(20)))
    write("plain_rtp", "mix-back", declared + b"".join(d(rtp(i), flags=2) for i in range(4)))
    write("plain_rtp", "rtcp-and-padding", declared + d(bytes([0x80, 200]) + b"\0" * 10)
          + d(rtp(1, padding=3)) + d(rtp(2, payload=b"", padding=1)))


# --- opus_vad: any packet ---------------------------------------------------------------------

def opus_vad_seeds():
    for name, data in {"silk-active": SILK_ACTIVE, "silk-quiet": SILK_QUIET, "hybrid": HYBRID,
                       "celt": OPUS_SILENCE, "code2": bytes([0x0A, 3, 0x0B, 0xE4, 0x51, 0x10]),
                       "code2-long": bytes([0x0A, 252, 1]) + b"\x55" * 40,
                       "silk-40ms": bytes([0x10, 0x2B, 0x99]),
                       "silk-60ms": bytes([0x18, 0x7B, 0x01, 0x02]),
                       "code3": bytes([0x0B, 0x02, 0x55])}.items():
        write("opus_vad", name, data)


# --- names: <id length / 2> <time> <id bytes> <pattern bytes> ---------------------------------

def names_seeds():
    ids = ["../x", "../../etc/passwd", "a/b", ".hidden", "..", ".", "nul\0byte", "café ☕",
           "100%", "back\\slash", "spaces and\ttabs", "日本語のルーム", "room-1", "x" * 300,
           "☕" * 85, "☕" * 84 + "a", "%2E", "~"]
    patterns = ["rec-#{id}-#{time}-#{type}", "#{id}", "#{id}#{id}", "#{nope}-#{id",
                "sub/#{id}.#{type}", "#{#{id}}", "t/#{id}-#{userid}", "job-#{md5}", "#{plugin}_#{time}_#{rand}",
                "10000-60000", "adaptive", "yes", "::1", "0", "50"]
    for i, (id_, pattern) in enumerate(zip(ids, patterns * 2)):
        raw = id_.encode()
        if len(raw) % 2:
            raw += b" "  # the length byte counts pairs of bytes
        data = bytes([min(len(raw) // 2, 255), i]) + raw + pattern.encode()
        write("names", hashlib.sha1(data).hexdigest()[:12], data)
    for key, value in [("rtp_port_range", "20000-20100"), ("rtp_port_range", "5-1"),
                       ("mixer_prebuffering", " 0 "), ("local_ip", "10.1.2.3"),
                       ("speech_hangover", "300"), ("mixer_threads", "64"),
                       ("recording_pattern", "a/#{id}")]:
        raw = key.encode()
        data = bytes([len(raw) // 2 + len(raw) % 2, 0]) + raw + (b" " if len(raw) % 2 else b"") \
            + value.encode()
        write("names", "config-" + key + "-" + hashlib.sha1(data).hexdigest()[:6], data)


def main():
    only = sys.argv[1:]
    for target, make in [("requests", requests_seeds), ("rtp_voice", rtp_voice_seeds),
                         ("plain_rtp", plain_rtp_seeds), ("opus_vad", opus_vad_seeds),
                         ("names", names_seeds)]:
        if only and target not in only:
            continue
        # Only this script's own files are rewritten: the folders also hold the minimized
        # corpora of long runs. After a change of a target's input format, delete its folder
        # first (those corpora no longer mean what they did).
        make()


if __name__ == "__main__":
    main()
