#!/usr/bin/env bash
# Builds and installs the plugin, then runs Debian's Janus in the foreground with it:
# HTTP API on http://127.0.0.1:8088/janus, Admin API on http://127.0.0.1:7088/admin
# (secret "janusoverlord"), recordings in ./build/recordings, job files in ./build/jobs.
# Talk to it from another terminal:   test/tester.py create myroom && test/tester.py list
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/install-deps.sh"
plugin="$("$here/build.sh")"
root="$(cd "$here/.." && pwd)/build"
conf="$root/janus-conf"
mkdir -p "$conf" "$root/janus-plugins" "$root/janus-transports" "$root/recordings" "$root/jobs"
ln -sf "$plugin" "$root/janus-plugins/libjanus_audioroom.so"
transports=$(dpkg -L janus | grep '/janus/transports/libjanus_http.so$' | head -1)
ln -sf "$transports" "$root/janus-transports/libjanus_http.so"
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
	port = 8088
	ip = "127.0.0.1"
}
admin: {
	admin_base_path = "/admin"
	admin_http = true
	admin_port = 7088
	admin_ip = "127.0.0.1"
}
JCFG
[ -f "$conf/janus.plugin.cm.audioroom.jcfg" ] || cat > "$conf/janus.plugin.cm.audioroom.jcfg" <<JCFG
general: {
	archive_path = "$root/recordings"
	job_path = "$root/jobs"
}
JCFG
mkdir -p "$root/janus-events" "$root/janus-loggers"
echo "Janus with janus.plugin.cm.audioroom: http://127.0.0.1:8088/janus (Ctrl-C stops it)"
echo "Try:  test/tester.py create myroom;  test/tester.py list;  python3 -i test/tester.py"
exec janus -C "$conf/janus.jcfg" -F "$conf"
