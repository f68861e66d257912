#!/usr/bin/env bash
# netns-run.sh CMD [ARGS...]
#
# Runs CMD inside a private, throw-away network namespace and removes the
# namespace again afterwards (normal exit, failure, Ctrl-C, SIGTERM/SIGHUP).
#
# Why: Janus 1.1.2 (libnice) gathers no ICE candidates on loopback, so a
# WebRTC test needs a "real" interface.  Inside a namespace we create a veth
# pair with BOTH ends in the namespace and give them private addresses; Janus
# gathers on one end, the aiortc peers on the other.  No traffic can leave the
# namespace (nothing in it is connected to the host's network), and the host's
# own network configuration is never touched.
#
# Exported to CMD:
#   JANUS_E2E_NETNS   name of the namespace (also the harness's "we are inside"
#                     marker checked by conftest.py)
#   JANUS_E2E_ADDR_A  address Janus should gather ICE candidates on
#   JANUS_E2E_ADDR_B  address the aiortc peers should use
#
# The exit status is CMD's exit status (128+N if CMD died from signal N);
# 143/129 if this script itself was sent SIGTERM/SIGHUP.
# Requires root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2.
set -u

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

NS="janus-e2e-$$"
# Interface names are local to the namespace, so fixed names never clash with
# the host or with other concurrent runs.
IF_A="e2e-a"
IF_B="e2e-b"
SUBNET_PREFIX="${JANUS_E2E_SUBNET_PREFIX:-10.203.7}"
ADDR_A="${SUBNET_PREFIX}.1"
ADDR_B="${SUBNET_PREFIX}.2"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if ip netns list 2>/dev/null | grep -qw -- "$NS"; then
        # Anything CMD left behind inside *our* namespace (e.g. a Janus
        # orphaned by a crashed pytest) is ours: TERM it, then KILL it, so
        # the namespace really goes away.
        local pids
        pids=$(ip netns pids "$NS" 2>/dev/null || true)
        if [ -n "$pids" ]; then
            kill -TERM $pids 2>/dev/null || true
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                pids=$(ip netns pids "$NS" 2>/dev/null || true)
                [ -z "$pids" ] && break
                sleep 0.2
            done
            [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
        fi
        ip netns del "$NS" 2>/dev/null || echo "netns-run.sh: could not delete netns $NS" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
# Until CMD runs, any signal just means "clean up and leave".
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

die() { echo "netns-run.sh: $*" >&2; exit 1; }

ip netns add "$NS" || die "cannot create network namespace $NS (are you root?)"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up || die "cannot bring up lo in $NS"
nsx ip link add "$IF_A" type veth peer name "$IF_B" || die "cannot create veth pair in $NS"
nsx ip addr add "$ADDR_A/24" dev "$IF_A" || die "cannot address $IF_A"
nsx ip addr add "$ADDR_B/24" dev "$IF_B" || die "cannot address $IF_B"
nsx ip link set "$IF_A" up || die "cannot bring up $IF_A"
nsx ip link set "$IF_B" up || die "cannot bring up $IF_B"
# Both addresses are local to the namespace; accept packets whose source is a
# local address arriving on an interface (harmless if traffic uses lo).
nsx sysctl -q -w net.ipv4.conf.all.accept_local=1 >/dev/null 2>&1 || true
nsx sysctl -q -w "net.ipv4.conf.$IF_A.accept_local=1" >/dev/null 2>&1 || true
nsx sysctl -q -w "net.ipv4.conf.$IF_B.accept_local=1" >/dev/null 2>&1 || true
# No IPv6 in the namespace: keeps ICE candidate lists short and deterministic.
nsx sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 >/dev/null 2>&1 || true

# CMD runs as an asynchronous child so this script stays responsive to
# signals while it runs.  Details:
#  * it stays in our process group, so a terminal Ctrl-C reaches it directly
#    (pytest then tears its fixtures down); we must not forward INT as well,
#    a second SIGINT would abort pytest's teardown;
#  * bash starts async children with SIGINT ignored and stdin on /dev/null;
#    `env --default-signal=INT` and `<&0` undo both (pytest --pdb works);
#  * SIGTERM/SIGHUP sent to this script alone (e.g. a CI timeout) are turned
#    into SIGINT for CMD, i.e. a graceful pytest shutdown, then we clean up.
SIGNALLED=""
# (no shell function here: $! must be CMD's own pid, ip/env exec into it)
ip netns exec "$NS" env --default-signal=INT \
    JANUS_E2E_NETNS="$NS" JANUS_E2E_ADDR_A="$ADDR_A" JANUS_E2E_ADDR_B="$ADDR_B" \
    "$@" <&0 &
CHILD=$!
trap 'SIGNALLED=130' INT
trap 'SIGNALLED=143; kill -INT "$CHILD" 2>/dev/null' TERM
trap 'SIGNALLED=129; kill -INT "$CHILD" 2>/dev/null' HUP
while kill -0 "$CHILD" 2>/dev/null; do
    wait "$CHILD"          # returns early (>128) when a trapped signal arrives
done
wait "$CHILD"              # bash remembers the reaped child's status
rc=$?
case "$SIGNALLED" in
    143|129) rc=$SIGNALLED ;;                 # we were told to stop
    130) [ "$rc" -eq 0 ] && rc=130 ;;         # Ctrl-C: keep CMD's own status
esac
exit "$rc"
