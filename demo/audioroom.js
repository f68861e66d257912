// Demo page of janus.plugin.cm.audioroom: join a room by name, hear it, be heard.
// Uses janus.js (Debian's libjs-janus-gateway) over Janus's WebSocket transport, and only
// standard WebRTC and WebAudio APIs. Everything shown to the person goes through textContent:
// room and display names are arbitrary strings.
'use strict';

const PACKAGE = 'janus.plugin.cm.audioroom';
const config = window.AUDIOROOM_DEMO || {};
// Rooms this page creates send talking events. The plugin averages the RFC 6464 level of
// every 25 packets (0.5 s) and calls it talking when louder than -40 dBov on average: normal
// speech shows within about a second, a quiet room (noise suppressed) does not.
const NEW_ROOM = { audiolevel_event: true, audio_active_packets: 25, audio_level_average: 40 };

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), error: $('error'), announcer: $('announcer'),
  form: $('join-form'), room: $('room'), roomList: $('room-list'), display: $('display'),
  pin: $('pin'), create: $('create'), join: $('join'),
  call: $('call'), roomName: $('room-name'), mute: $('mute'), leave: $('leave'), play: $('play'),
  micLevel: $('mic-level'), roomLevel: $('room-level'), participants: $('participants'),
  share: $('share-link'), audio: $('remote-audio'),
};

// Connection to Janus: one session, one handle for room requests, one handle per join.
let janus = null;
let control = null;
let media = null;
let mic = null;             // the MediaStream from getUserMedia
let audioCtx = null;
let meterTimer = null;
const meters = {};          // 'mic' / 'room' -> {source, analyser, buffer}

// The call.
let room = null;            // id of the room we are in
let myId = null;
let muted = false;
const people = new Map();   // userid -> {display, muted, talking, setup}
let pending = null;         // the one asynchronous request awaiting its event on `media`

class ShownError extends Error {}   // a message meant for the person, as it is

// ------------------------------------------------------------------ messages
function setStatus(text) { ui.status.textContent = text; }

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

function announce(text) {
  // Re-setting the same text would not be read again; clear first.
  ui.announcer.textContent = '';
  setTimeout(() => { ui.announcer.textContent = text; }, 50);
}

function nameOf(userid) {
  const p = people.get(userid);
  return p && p.display ? p.display : `Participant ${userid}`;
}

// The plugin's error reply in words, for the request that caused it.
function pluginErrorText(data, ctx) {
  const reason = String(data.error || '');
  switch (data.error_code) {
    case 485:
      return `There is no room named “${ctx.room}”.` +
        (ui.create.checked ? '' : ' Tick “Create the room if it does not exist” to create it.');
    case 489:
      if (/admin_key/.test(reason)) return 'Only administrators may create rooms on this server: pick an existing room.';
      if (/pin/.test(reason)) {
        return ctx.pin ? `Wrong PIN for the room “${ctx.room}”.` : `The room “${ctx.room}” needs a PIN.`;
      }
      return `Not allowed: ${reason}.`;
    case 483:
      if (/admin_key/.test(reason)) return 'Only administrators may create rooms on this server: pick an existing room.';
      return `The request missed something: ${reason}.`;
    case 484:
      return `Not accepted: ${reason}.`;
    default:
      return `The audioroom plugin refused (error ${data.error_code}): ${reason}.`;
  }
}

function micErrorText(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return window.isSecureContext
        ? 'The microphone was not allowed. Allow it for this page (the icon in the address bar) and join again.'
        : 'Browsers only give the microphone to secure pages: open this page as https://, or as http://127.0.0.1 or http://localhost.';
    case 'NotFoundError':
      return 'No microphone was found. Connect one and join again.';
    case 'NotReadableError':
      return 'The microphone is busy or unavailable (another program may be using it).';
    default:
      return `The microphone could not be opened: ${err && err.message ? err.message : err}.`;
  }
}

// ------------------------------------------------------------- Janus access
function serverUrl() {
  if (config.server) return config.server;
  const secure = location.protocol === 'https:';
  return `${secure ? 'wss' : 'ws'}://${location.hostname}:${secure ? 8989 : 8188}`;
}

let initDone = null;
function initJanus() {
  if (!initDone) {
    initDone = new Promise((resolve) => Janus.init({ debug: config.debug || ['warn', 'error'], callback: resolve }));
  }
  return initDone;
}

// Resolves once a session and the control handle exist.
async function connect() {
  if (janus && control) return;
  await initJanus();
  if (!Janus.isWebrtcSupported()) throw new ShownError('This browser does not support WebRTC.');
  const server = serverUrl();
  await new Promise((resolve, reject) => {
    let settled = false;
    const session = new Janus({
      server,
      iceServers: config.iceServers || [],
      success: () => {
        session.attach({
          plugin: PACKAGE,
          opaqueId: `audioroom-demo-${Janus.randomString(8)}`,
          success: (handle) => {
            settled = true;
            janus = session;
            control = handle;
            resolve();
          },
          error: (err) => {
            settled = true;
            session.destroy({ notifyDestroyed: false });
            reject(new ShownError(/460|No such plugin/.test(String(err))
              ? `Janus at ${server} does not have the audioroom plugin (${PACKAGE}) loaded.`
              : `Janus refused to attach to the audioroom plugin: ${err}.`));
          },
        });
      },
      error: (err) => {
        if (!settled) {
          settled = true;
          reject(new ShownError(`Cannot reach Janus at ${server} (${err}). Is test/start-janus.sh running?`));
          return;
        }
        connectionLost();
      },
      destroyed: () => connectionLost(),
    });
  });
  setStatus('Connected to Janus.');
}

function connectionLost() {
  if (!janus) return;
  janus = null;
  control = null;
  if (room !== null) endCall('The connection to Janus was lost. Join again when it is back.');
  else showError('The connection to Janus was lost.');
  setStatus('Not connected to Janus.');
}

// A synchronous plugin request: its reply, or a ShownError with the plugin's reason.
function request(handle, message, ctx) {
  return new Promise((resolve, reject) => handle.send({
    message,
    success: (data) => {
      if (data && data.error_code) reject(new ShownError(pluginErrorText(data, ctx || {})));
      else resolve(data);
    },
    error: (err) => reject(new ShownError(`Janus refused the request: ${err}.`)),
  }));
}

// An asynchronous request on the media handle: Janus acks it, the plugin's answer (or error)
// comes as an event, taken by onMediaMessage. One at a time; the buttons wait for it.
function requestAsync(message, jsep, ctx, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending = null;
      reject(new ShownError('Janus did not answer in time.'));
    }, timeoutMs);
    pending = {
      resolve: (data) => { clearTimeout(timer); resolve(data); },
      reject: (data) => { clearTimeout(timer); reject(new ShownError(pluginErrorText(data, ctx || {}))); },
    };
    media.send({
      message, jsep,
      error: (err) => {
        clearTimeout(timer);
        pending = null;
        reject(new ShownError(`Janus refused the request: ${err}.`));
      },
    });
  });
}

function attachMedia() {
  return new Promise((resolve, reject) => janus.attach({
    plugin: PACKAGE,
    opaqueId: `audioroom-demo-${Janus.randomString(8)}`,
    success: resolve,
    error: (err) => reject(new ShownError(`Could not attach to the audioroom plugin: ${err}.`)),
    onmessage: onMediaMessage,
    onremotetrack: onRemoteTrack,
    webrtcState: (up) => {
      if (room === null) return;
      if (up) {
        setStatus(`In the room “${room}”.`);
        const me = people.get(myId);
        if (me) { me.setup = true; render(); }
      } else {
        endCall('The audio connection closed.');
      }
    },
    iceState: (state) => {
      if (state === 'failed' && room !== null) {
        endCall('The audio connection could not be set up (ICE failed): this browser and Janus cannot reach each other.');
      }
    },
  }));
}

function createOffer(handle, track) {
  return new Promise((resolve, reject) => handle.createOffer({
    // Our own microphone track: we opened it in the click, and meter it.
    tracks: [{ type: 'audio', capture: track, recv: true }],
    success: resolve,
    error: (err) => reject(new ShownError(`Could not prepare the audio connection: ${err && err.message ? err.message : err}.`)),
  }));
}

// -------------------------------------------------------------- plugin events
function onMediaMessage(msg, jsep) {
  if (jsep) {
    media.handleRemoteJsep({
      jsep,
      error: (err) => endCall(`The server's audio answer could not be used: ${err}.`),
    });
  }
  const kind = msg.audioroom;
  const answersPending = msg.error_code || (kind === 'joined' && 'userid' in msg) ||
    kind === 'left' || msg.result === 'ok';
  if (pending && answersPending) {
    const p = pending;
    pending = null;
    if (msg.error_code) p.reject(msg);
    else p.resolve(msg);
    if (kind !== 'joined') return;
  } else if (msg.error_code) {
    showError(pluginErrorText(msg, { room }));
    return;
  }

  if (kind === 'joined') {
    if ('userid' in msg) {            // our own join: everyone already there
      people.clear();
      myId = msg.userid;
      people.set(myId, { display: ui.display.value.trim(), muted: false, talking: false, setup: false });
    }
    for (const p of msg.participants || []) {
      const known = people.has(p.userid);
      people.set(p.userid, { ...p });
      if (!('userid' in msg) && !known) announce(`${nameOf(p.userid)} joined.`);
    }
    render();
  } else if (kind === 'talking' || kind === 'stopped-talking') {
    const p = people.get(msg.userid);
    if (p) { p.talking = kind === 'talking'; render(); }
  } else if (kind === 'destroyed') {
    endCall(`The room “${room}” was closed.`);
  } else if (kind === 'event') {
    if (Array.isArray(msg.participants)) {
      for (const p of msg.participants) {
        const before = people.get(p.userid);
        people.set(p.userid, { ...before, ...p });
        if (p.userid === myId && p.muted !== muted) {
          // A moderator (un)muted us: the button and the microphone follow the room.
          applyMute(p.muted);
          announce(p.muted ? 'A moderator muted you.' : 'A moderator unmuted you.');
        } else if (before && before.muted !== p.muted) {
          announce(`${nameOf(p.userid)} ${p.muted ? 'muted' : 'unmuted'}.`);
        }
      }
      render();
    }
    if ('leaving' in msg) {
      announce(`${nameOf(msg.leaving)} left.`);
      people.delete(msg.leaving);
      render();
    }
    if ('kicked' in msg) {
      if (msg.kicked === myId) endCall('A moderator removed you from the room.');
      else { people.delete(msg.kicked); render(); }
    }
    if (msg.recording === 'stopped') {
      // With a reason the disk failed; without, an operator stopped it (enable_recording).
      if (msg.reason) showError(`The room is no longer recorded: ${msg.reason}`);
      else announce('The room is no longer recorded.');
    }
    if (msg.recording === 'started') announce('The room is recorded.');
    // Top-level `muted` is the room's (mute_room): only moderators are heard meanwhile.
    if (typeof msg.muted === 'boolean') {
      announce(msg.muted ? 'A moderator muted the room.' : 'The room is no longer muted.');
    }
    if (msg.suspended === myId) announce('A moderator put you on hold.');
    if (msg.resumed === myId) announce('You are back in the conversation.');
  }
}

function onRemoteTrack(track, mid, on) {
  if (track.kind !== 'audio') return;
  if (!on) return;
  ui.audio.srcObject = new MediaStream([track]);
  playRoom();
  tapMeter('room', ui.audio.srcObject);
}

function playRoom() {
  const played = ui.audio.play();
  if (played && played.then) {
    played.then(() => { ui.play.hidden = true; })
      .catch(() => { if (ui.audio.srcObject) ui.play.hidden = false; });   // autoplay refused
  }
}

// ------------------------------------------------------------------ the list
function render() {
  const items = [];
  for (const [userid, p] of people) {
    const li = document.createElement('li');
    li.dataset.userid = String(userid);
    li.classList.toggle('talking', !!p.talking);
    li.classList.toggle('muted', !!p.muted);
    li.classList.toggle('me', userid === myId);
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = nameOf(userid) + (userid === myId ? ' (you)' : '');
    li.append(name);
    const badge = (cls, text) => {
      const b = document.createElement('span');
      b.className = `badge ${cls}`;
      b.textContent = text;
      li.append(b);
    };
    if (p.talking) badge('talking', 'talking');
    if (p.muted) badge('muted', 'muted');
    if (!p.setup) badge('connecting', userid === myId ? 'connecting…' : 'no audio yet');
    items.push(li);
  }
  ui.participants.replaceChildren(...items);
}

// -------------------------------------------------------------------- meters
function ensureAudioContext() {
  if (!audioCtx) audioCtx = new AudioContext();
  if (audioCtx.state === 'suspended') audioCtx.resume().catch(() => {});
  return audioCtx;
}

function tapMeter(which, stream) {
  const ctx = ensureAudioContext();
  untapMeter(which);
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  source.connect(analyser);
  meters[which] = { source, analyser, buffer: new Float32Array(analyser.fftSize) };
  if (!meterTimer) meterTimer = setInterval(updateMeters, 100);
}

function untapMeter(which) {
  const m = meters[which];
  if (m) { m.source.disconnect(); delete meters[which]; }
}

// RMS in dBFS shown on a -60…0 dB scale.
function level(m) {
  m.analyser.getFloatTimeDomainData(m.buffer);
  let sum = 0;
  for (const x of m.buffer) sum += x * x;
  const rms = Math.sqrt(sum / m.buffer.length);
  const db = rms > 0 ? 20 * Math.log10(rms) : -100;
  return Math.min(1, Math.max(0, (db + 60) / 60));
}

function updateMeters() {
  ui.micLevel.value = meters.mic && !muted ? level(meters.mic) : 0;
  ui.roomLevel.value = meters.room ? level(meters.room) : 0;
}

// ---------------------------------------------------------------- join/leave
function roomIdProblem(id) {
  const bytes = new TextEncoder().encode(id).length;
  if (bytes === 0) return 'Type a room name.';
  if (bytes > 256) return 'Room names are at most 256 bytes long (about 85 to 256 characters).';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id)) return 'Room names cannot contain control characters.';
  return null;
}

async function join(event) {
  event.preventDefault();
  if (room !== null || ui.join.disabled) return;
  showError('');
  const id = ui.room.value;
  const display = ui.display.value.trim();
  const pin = ui.pin.value;
  const problem = roomIdProblem(id) || (display ? null : 'Type your name.');
  if (problem) {
    showError(problem);
    (display || roomIdProblem(id) ? ui.room : ui.display).focus();
    return;
  }
  ui.join.disabled = true;
  setStatus('Joining…');
  // Inside the click (a user gesture): unlock sound and ask for the microphone.
  ensureAudioContext();
  ui.audio.play().catch(() => {});
  try {
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (err) {
      throw new ShownError(micErrorText(err));
    }
    await connect();
    const ctx = { room: id, pin };
    if (ui.create.checked) {
      const found = await request(control, { request: 'exists', id }, ctx);
      if (!found.exists) {
        const body = { request: 'create', id, ...NEW_ROOM };
        if (pin) body.pin = pin;
        try {
          await request(control, body, ctx);
        } catch (err) {
          // Someone created it in the meantime (486): join it all the same.
          if (!/already exists/.test(err.message)) throw err;
        }
      }
    }
    media = await attachMedia();
    const offer = await createOffer(media, mic.getAudioTracks()[0]);
    const body = { request: 'join', id, display, muted: false };
    if (pin) body.pin = pin;
    room = id;
    muted = false;
    await requestAsync(body, offer, ctx);
    enterCall(id, display);
  } catch (err) {
    room = null;
    releaseMedia();
    setStatus(janus ? 'Connected to Janus.' : 'Not connected to Janus.');
    showError(err instanceof ShownError ? err.message : `Something went wrong: ${err && err.message ? err.message : err}`);
  } finally {
    ui.join.disabled = false;
  }
}

function enterCall(id, display) {
  try { localStorage.setItem('audioroom-demo-name', display); } catch (e) { /* private mode */ }
  const params = new URLSearchParams(location.search);
  params.set('room', id);
  history.replaceState(null, '', `?${params}`);
  ui.share.href = location.href;
  try { ui.share.textContent = decodeURI(location.href); } catch (e) { ui.share.textContent = location.href; }
  ui.roomName.textContent = id;
  applyMute(false);
  tapMeter('mic', mic);
  ui.form.hidden = true;
  ui.call.hidden = false;
  setStatus(`Joined “${id}”, connecting the audio…`);
  announce(`You joined the room ${id}.`);
  ui.mute.focus();
  render();
}

function applyMute(on) {
  muted = on;
  // The plugin drops a muted voice; disabling the track also keeps the sound in the browser.
  if (mic) for (const t of mic.getAudioTracks()) t.enabled = !on;
  ui.mute.textContent = on ? 'Unmute' : 'Mute';
  ui.mute.setAttribute('aria-pressed', String(on));
  const me = people.get(myId);
  if (me) { me.muted = on; render(); }
}

async function toggleMute() {
  if (room === null || pending) return;
  const want = !muted;
  applyMute(want);
  ui.mute.disabled = true;
  try {
    await requestAsync({ request: 'configure', muted: want }, undefined, { room });
  } catch (err) {
    applyMute(!want);
    showError(err.message);
  } finally {
    ui.mute.disabled = false;
  }
}

async function leave() {
  if (room === null) return;
  ui.leave.disabled = true;
  try {
    if (!pending) await requestAsync({ request: 'leave' }, undefined, { room }, 3000);
  } catch (err) {
    // Detaching below takes us out of the room anyway.
  }
  ui.leave.disabled = false;
  endCall(null);
}

// Back to the form; `reason` (if any) is shown as an error.
function endCall(reason) {
  const wasIn = room;
  room = null;
  myId = null;
  people.clear();
  render();
  releaseMedia();
  ui.call.hidden = true;
  ui.form.hidden = false;
  ui.play.hidden = true;
  if (reason) showError(reason);
  setStatus(janus ? 'Connected to Janus.' : 'Not connected to Janus.');
  if (wasIn !== null) announce(reason || `You left the room ${wasIn}.`);
  refreshRooms();
  ui.join.focus();
}

function releaseMedia() {
  if (pending) { pending = null; }
  if (media) {
    const handle = media;
    media = null;
    handle.detach({ noRequest: !janus });   // detaching hangs up; the room hears "leaving"
  }
  untapMeter('mic');
  untapMeter('room');
  if (mic) { for (const t of mic.getTracks()) t.stop(); mic = null; }
  ui.audio.srcObject = null;
  updateMeters();
}

// ------------------------------------------------------------------ room list
async function refreshRooms() {
  if (!control) return;
  try {
    const data = await request(control, { request: 'list' });
    const options = (data.list || []).map((r) => {
      const o = document.createElement('option');
      o.value = r.id;
      const n = r.num_participants;
      o.label = `${r.description} · ${n} ${n === 1 ? 'person' : 'people'}`;
      return o;
    });
    ui.roomList.replaceChildren(...options);
  } catch (err) {
    // The list is a convenience; typing a name still works.
  }
}

// ---------------------------------------------------------------------- start
function start() {
  const params = new URLSearchParams(location.search);
  if (params.has('room')) ui.room.value = params.get('room');
  try { ui.display.value = localStorage.getItem('audioroom-demo-name') || ''; } catch (e) { /* private mode */ }
  ui.form.addEventListener('submit', join);
  ui.mute.addEventListener('click', toggleMute);
  ui.leave.addEventListener('click', leave);
  ui.play.addEventListener('click', playRoom);
  ui.room.addEventListener('focus', refreshRooms);
  (ui.room.value ? ui.display : ui.room).focus();
  // A closed tab or a page left: leave now rather than when Janus notices (its session
  // timeout, 60 s by default, when nothing tells it the connection is gone).
  window.addEventListener('pagehide', () => {
    if (media) {
      try { media.send({ message: { request: 'leave' } }); media.hangup(true); } catch (e) { /* unloading */ }
    }
    if (janus) janus.destroy({ unload: true, notifyDestroyed: false });
  });
  // Back from the back/forward cache, the connection above is gone: start afresh.
  window.addEventListener('pageshow', (event) => { if (event.persisted) location.reload(); });
  if (typeof Janus === 'undefined') {
    setStatus('Not connected to Janus.');
    showError('janus.js did not load: install Debian\'s libjs-janus-gateway and libjs-webrtc-adapter and serve this page with demo/serve.py.');
    return;
  }
  connect().then(refreshRooms).catch((err) => {
    setStatus('Not connected to Janus.');
    showError(err.message);
  });
}

start();
