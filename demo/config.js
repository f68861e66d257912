// Settings of the demo page. demo/serve.py --janus URL replaces this file with its own.
window.AUDIOROOM_DEMO = window.AUDIOROOM_DEMO || {
  // Janus's API for janus.js: null means Janus's WebSocket transport on the page's own host,
  // ws://<host>:8188 for an http:// page and wss://<host>:8989 for an https:// one.
  // A list is tried in order, e.g. ["ws://127.0.0.1:8188", "http://127.0.0.1:8088/janus"].
  server: null,
  // STUN/TURN servers for browsers behind NAT, e.g. [{urls: "stun:stun.example.org"}].
  iceServers: [],
};
