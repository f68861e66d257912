#!/usr/bin/env python3
"""Serves the demo page with nothing but Python's standard library.

    demo/serve.py [--bind 127.0.0.1] [--port 8000] [--janus ws://127.0.0.1:8188]
                  [--cert cert.pem --key key.pem]

What it serves:
  /                           the files of demo/ (index.html, audioroom.js, ...)
  /javascript/janus-gateway/  Debian's libjs-janus-gateway  (/usr/share/javascript/...)
  /javascript/webrtc-adapter/ Debian's libjs-webrtc-adapter
  /config.js                  with --janus: the page's settings naming that Janus
                              (otherwise demo/config.js: the page's own host, port 8188)

The /javascript/ paths are those of Debian's javascript-common for Apache, so the same
files work unchanged behind Apache. Browsers give the microphone only to secure pages:
http://127.0.0.1 and http://localhost count as secure, any other host needs HTTPS
(--cert/--key; the page then talks to Janus over wss:// on port 8989).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import ssl
import sys
import threading
import time
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
JAVASCRIPT_DIR = Path(os.environ.get("AUDIOROOM_JAVASCRIPT_DIR", "/usr/share/javascript"))
LIBRARIES = ("janus-gateway", "webrtc-adapter")


class Handler(http.server.SimpleHTTPRequestHandler):
    config_js: bytes | None = None
    quiet = True

    def translate_path(self, path: str) -> str:
        # Each mount is served by the standard handler's own path cleaning (no "..").
        for lib in LIBRARIES:
            prefix = f"/javascript/{lib}/"
            if path.startswith(prefix):
                self.directory = str(JAVASCRIPT_DIR / lib)
                return super().translate_path(path[len(prefix) - 1:])
        if path.startswith("/javascript/"):
            self.directory = str(DEMO_DIR / "no-such-folder")
            return super().translate_path("/")
        self.directory = str(DEMO_DIR)
        return super().translate_path(path)

    def do_GET(self) -> None:
        if self.config_js is not None and self.path.split("?", 1)[0] == "/config.js":
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(self.config_js)))
            self.end_headers()
            self.wfile.write(self.config_js)
            return
        super().do_GET()

    def end_headers(self) -> None:
        # Always the current files: the page is small and edited in place.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)


def watch_parent(httpd: http.server.HTTPServer) -> None:
    """Shut down once the parent is gone (we are then adopted: the parent pid changes)."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    httpd.shutdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    ap.add_argument("--janus", action="append", metavar="URL",
                    help="Janus API for the page, e.g. ws://127.0.0.1:8188 (repeat to give fallbacks)")
    ap.add_argument("--cert", help="PEM certificate: serve HTTPS")
    ap.add_argument("--key", help="PEM private key of --cert")
    ap.add_argument("--verbose", action="store_true", help="log every request")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started this one ends (test/start-janus.sh)")
    args = ap.parse_args(argv)

    missing = [lib for lib in LIBRARIES if not (JAVASCRIPT_DIR / lib).is_dir()]
    if missing:
        print(f"serve.py: {', '.join(str(JAVASCRIPT_DIR / m) for m in missing)} missing: "
              "apt-get install libjs-janus-gateway libjs-webrtc-adapter", file=sys.stderr)
        return 1
    if args.janus:
        server = args.janus[0] if len(args.janus) == 1 else args.janus
        Handler.config_js = ("window.AUDIOROOM_DEMO = " +
                             json.dumps({"server": server, "iceServers": []}) + ";\n").encode()
    Handler.quiet = not args.verbose

    httpd = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    scheme = "http"
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    host, port = httpd.server_address[:2]
    shown = "127.0.0.1" if host == "0.0.0.0" else host
    print(f"Demo page: {scheme}://{shown}:{port}/", flush=True)
    if args.exit_with_parent:
        threading.Thread(target=watch_parent, args=(httpd,), daemon=True).start()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
