#!/usr/bin/env bash
# Builds and installs the plugin, then runs Debian's Janus in the foreground with it, and
# serves the demo page (demo/, with Debian's janus.js) beside it:
#   demo page      http://127.0.0.1:8000/          (AUDIOROOM_DEMO_PORT changes the port)
#   WebSocket API  ws://127.0.0.1:8188             (what janus.js on the page uses)
#   HTTP API       http://127.0.0.1:8088/janus     (what test/tester.py uses)
#   Admin API      http://127.0.0.1:7088/admin     (secret "janusoverlord")
# Recordings go to ./build/recordings, job files to ./build/jobs. Ctrl-C stops everything.
#
# For browsers on other hosts (they give the microphone only to https:// pages), give a
# certificate and key: the page is then served over HTTPS on every interface, and Janus's
# secure WebSocket listens on port 8989 with the same certificate:
#   AUDIOROOM_DEMO_CERT=/path/cert.pem AUDIOROOM_DEMO_KEY=/path/key.pem test/start-janus.sh
#
# A second (third, ...) Janus beside the first, e.g. to link a room across two servers
# (README.md, "One room on several servers"): AUDIOROOM_JANUS_INSTANCE=2 test/start-janus.sh
# adds 1 (N-1) to every port above (demo page 8001, WebSocket 8189, HTTP 8089, Admin 7089,
# secure WebSocket 8990) and keeps its configuration, recordings and jobs in ./build/janus-conf-2,
# ./build/recordings-2 and ./build/jobs-2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
instance="${AUDIOROOM_JANUS_INSTANCE:-1}"
if ! [[ "$instance" =~ ^[1-9]$ ]]; then
    echo "AUDIOROOM_JANUS_INSTANCE must be 1 to 9" >&2
    exit 64
fi
offset=$((instance - 1))
suffix=""
[ "$instance" = 1 ] || suffix="-$instance"
http_port=$((8088 + offset))
ws_port=$((8188 + offset))
admin_port=$((7088 + offset))
wss_port=$((8989 + offset))
demo_port="${AUDIOROOM_DEMO_PORT:-$((8000 + offset))}"
cert="${AUDIOROOM_DEMO_CERT:-}"
key="${AUDIOROOM_DEMO_KEY:-}"
if [ -n "$cert$key" ] && { [ ! -r "$cert" ] || [ ! -r "$key" ]; }; then
    echo "AUDIOROOM_DEMO_CERT and AUDIOROOM_DEMO_KEY must both name readable PEM files" >&2
    exit 64
fi
"$here/install-deps.sh" --no-browser
plugin="$("$here/build.sh")"
root="$(cd "$here/.." && pwd)/build"
conf="$root/janus-conf$suffix"
recordings="$root/recordings$suffix"
jobs="$root/jobs$suffix"
mkdir -p "$conf" "$root/janus-plugins" "$root/janus-transports" "$recordings" "$jobs"
ln -sf "$plugin" "$root/janus-plugins/libjanus_audioroom.so"
for transport in http websockets; do
    lib=$(dpkg -L janus | grep "/janus/transports/libjanus_$transport.so\$" | head -1)
    ln -sf "$lib" "$root/janus-transports/libjanus_$transport.so"
done
cat > "$conf/janus.jcfg" <<JCFG
general: {
	configs_folder = "$conf"
	plugins_folder = "$root/janus-plugins"
	transports_folder = "$root/janus-transports"
	events_folder = "$root/janus-events"
	loggers_folder = "$root/janus-loggers"
	admin_secret = "janusoverlord"
	debug_level = 4
}
nat: {
	ice_ignore_list = "vmnet"
}
JCFG
cat > "$conf/janus.transport.http.jcfg" <<JCFG
general: {
	json = "indented"
	base_path = "/janus"
	http = true
	port = $http_port
	ip = "127.0.0.1"
}
admin: {
	admin_base_path = "/admin"
	admin_http = true
	admin_port = $admin_port
	admin_ip = "127.0.0.1"
}
JCFG
if [ -n "$cert" ]; then
    wss="wss = true
	wss_port = $wss_port"
    certificates="cert_pem = \"$(realpath "$cert")\"
	cert_key = \"$(realpath "$key")\""
else
    wss="wss = false"
    certificates=""
fi
cat > "$conf/janus.transport.websockets.jcfg" <<JCFG
general: {
	json = "indented"
	ws = true
	ws_port = $ws_port
	ws_ip = "127.0.0.1"
	$wss
}
admin: {
	admin_ws = false
	admin_wss = false
}
certificates: {
	$certificates
}
JCFG
[ -f "$conf/janus.plugin.cm.audioroom.jcfg" ] || cat > "$conf/janus.plugin.cm.audioroom.jcfg" <<JCFG
general: {
	archive_path = "$recordings"
	job_path = "$jobs"
}
JCFG
mkdir -p "$root/janus-events" "$root/janus-loggers"

# The demo page: a tiny server from Python's standard library. Janus replaces this shell
# (exec, so signals reach it as before) and the server exits when Janus does.
if [ -n "$cert" ]; then
    serve_args=(--bind 0.0.0.0 --port "$demo_port" --cert "$cert" --key "$key")
    page_url="https://$(hostname -f 2>/dev/null || hostname):$demo_port/"
else
    serve_args=(--bind 127.0.0.1 --port "$demo_port")
    page_url="http://127.0.0.1:$demo_port/"
fi
# The page finds Janus on port 8188 (8989) of its own host; another instance's page is told.
if [ "$instance" != 1 ]; then
    if [ -n "$cert" ]; then
        serve_args+=(--janus "wss://$(hostname -f 2>/dev/null || hostname):$wss_port")
    else
        serve_args+=(--janus "ws://127.0.0.1:$ws_port")
    fi
fi
python3 "$here/../demo/serve.py" "${serve_args[@]}" --exit-with-parent >/dev/null &
serve_pid=$!
sleep 0.5
if ! kill -0 "$serve_pid" 2>/dev/null; then
    echo "demo/serve.py could not listen on port $demo_port (busy? set AUDIOROOM_DEMO_PORT)" >&2
    exit 1
fi

# Janus logs a lot while it starts: say where to go once its WebSocket API answers.
url_option=""
[ "$instance" = 1 ] || url_option=" --url http://127.0.0.1:$http_port/janus"
(
    for _ in $(seq 1 200); do
        if (exec 3<>/dev/tcp/127.0.0.1/$ws_port) 2>/dev/null; then
            cat <<BANNER

================================================================================
  Janus with janus.plugin.cm.audioroom is up. Ctrl-C stops it.
  Open the demo page:  $page_url
  (join a room by name, allow the microphone; a second tab or browser is a second person)
  HTTP API for test/tester.py: http://127.0.0.1:$http_port/janus
    test/tester.py${url_option} list;  test/tester.py${url_option} listparticipants "café ☕";  python3 -i test/tester.py${url_option}
================================================================================

BANNER
            exit 0
        fi
        sleep 0.1
    done
    echo "Janus's WebSocket API (port $ws_port) did not come up: is another Janus running?" >&2
) &
exec janus -C "$conf/janus.jcfg" -F "$conf"
