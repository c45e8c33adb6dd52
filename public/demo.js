// /demo: joins a room with the SDK (served by this server as /sdk/) and shows it live.
import { GalleryClient } from '/sdk/client/src/index.js';
import {
  appendChat,
  drawMap,
  headingOf,
  renderAnnotations,
  renderMembers,
  yawQuaternion,
} from './demo-view.js';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'gms-demo-api-key';
const TOKEN_STORAGE = 'gms-demo-token';
const STEP = 0.5;
const TURN = Math.PI / 12;
// Poses are not stored by the server: sending ours again now and then lets late joiners see us.
const POSE_REFRESH_MS = 2000;
const PING_MS = 2000;

let client;
let room;
/** The pose refresh and ping intervals of the room the page is in; none while out of a room. */
let timers = [];
let wander;
/** The last Leave: settled once the server answered and its client is closed. */
let left = Promise.resolve();
const me = { x: 0, z: 0, yaw: 0 };
/** Last pose of each other member: userId -> { x, z, fx, fz }. */
const poses = new Map();

// Kept in this tab only (sessionStorage), never in a URL: URLs end up in logs and history.
$('api-key').value = sessionStorage.getItem(KEY_STORAGE) ?? '';
$('token').value = sessionStorage.getItem(TOKEN_STORAGE) ?? '';

function remember(storageKey, value) {
  if (value) {
    sessionStorage.setItem(storageKey, value);
  } else {
    sessionStorage.removeItem(storageKey);
  }
}

function showError(error) {
  $('error').hidden = false;
  $('error').textContent = error instanceof Error ? error.message : String(error);
}

function setConnection(state) {
  $('connection').textContent = state;
  $('connection').dataset.state = state;
}

function myPose() {
  return { x: me.x, z: me.z, ...headingOf(yawQuaternion(me.yaw)) };
}

function render() {
  if (!room) {
    // Out of a room: nobody to list or draw.
    $('members').replaceChildren();
    drawMap($('map'), []);
    return;
  }
  const members = [...room.members.values()];
  const shown = new Map(poses);
  shown.set(client.userId, myPose());
  renderMembers($('members'), members, shown, client.userId);
  const markers = members
    .filter((user) => shown.has(user.id))
    .map((user) => ({
      id: user.id,
      label: user.name || user.id,
      self: user.id === client.userId,
      connected: user.connected,
      ...shown.get(user.id),
    }));
  drawMap($('map'), markers);
}

let drawQueued = false;
function scheduleRender() {
  if (!drawQueued) {
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      render();
    });
  }
}

function sendPose() {
  if (room && !room.closed) {
    room.sendPose([me.x, 1.6, me.z], yawQuaternion(me.yaw));
  }
  scheduleRender();
}

function move(steps, turns) {
  me.yaw -= turns * TURN;
  const { fx, fz } = headingOf(yawQuaternion(me.yaw));
  // Stay on the map (±10 units).
  me.x = Math.max(-9.5, Math.min(9.5, me.x + fx * steps * STEP));
  me.z = Math.max(-9.5, Math.min(9.5, me.z + fz * steps * STEP));
  sendPose();
}

function showState() {
  $('version').textContent = String(room.state.version);
  renderAnnotations($('annotations'), room.state.annotations);
}

function setJoined(joined) {
  for (const id of ['move-controls', 'annotation-controls', 'chat-controls']) {
    $(id).disabled = !joined;
  }
  $('leave').disabled = !joined;
  $('join').disabled = joined;
}

/**
 * Stops what runs only while in a room. Every way out of it comes here (Leave, a kick, a deleted
 * or lost room, a closed connection): a Join starts a new set, and one left running would keep
 * pinging and sending poses beside it.
 */
function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
  clearInterval(wander);
  $('wander').checked = false;
}

function userIdFrom(name) {
  return name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'guest';
}

async function join() {
  // One Join at a time: a second one (a double-click) while this one connects would make a second
  // client of the same user id, which the server takes for this one reconnecting (close 4000).
  $('join').disabled = true;
  $('error').hidden = true;
  const name = $('name').value.trim();
  const roomId = $('room').value.trim();
  const apiKey = $('api-key').value || undefined;
  const token = $('token').value || undefined;
  remember(KEY_STORAGE, apiKey);
  remember(TOKEN_STORAGE, token);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${location.host}/`;
  // A previous Join's timers, should any still run: there is one set, for the room joined now.
  stopTimers();
  // With a token the server takes the user id from it (`sub`); the name is shown as typed.
  // Without one, the id is made from the name: the server's ids are [A-Za-z0-9._-]{1,64}.
  const own = token
    ? new GalleryClient({ url, token })
    : new GalleryClient({ url, userId: userIdFrom(name), apiKey });
  client = own;
  own.on('connectionState', ({ state }) => {
    // An earlier client's late close must not show over this one's state.
    if (client !== own) {
      return;
    }
    setConnection(state);
    scheduleRender();
  });
  let joined;
  try {
    // A Leave still waiting for the server: its client is closed first, else the server would
    // take this one, of the same user id, for it reconnecting and close it (4000).
    await left.catch(() => {});
    await own.connect();
    joined = await own.joinRoom(roomId, { name, role: 'editor' });
  } catch (error) {
    // This Join's client: `client` is a newer one if another Join has started since.
    own.close();
    throw error;
  }
  room = joined;
  room.on('member', (event) => {
    if (event.type === 'left') {
      poses.delete(event.userId);
    }
    scheduleRender();
  });
  room.on('pose', ({ userId, position, rotation }) => {
    poses.set(userId, { x: position[0], z: position[2], ...headingOf(rotation) });
    scheduleRender();
  });
  room.on('state', showState);
  room.on('message', ({ senderId, message }) => {
    if (message.type === 'chat_message' && typeof message.data?.text === 'string') {
      const sender = room.members.get(senderId);
      appendChat($('chat'), sender?.name || senderId, message.data.text);
    }
  });
  room.on('closed', ({ reason }) => {
    // The client was made for this room alone, and the SDK rejoins nothing it closed: a Join
    // makes a new one. Left open, it would stay connected until that Join's replaced it (4000).
    own.close();
    // A newer Join (pressed while Leave waited for the server) has the page now: leave it be.
    if (client !== own) {
      return;
    }
    stopTimers();
    // 'left' is our own Leave button; anything else (kicked, deleted, lost) is news.
    if (reason !== 'left') {
      showError(`Out of the room: ${reason}`);
    }
    // Not drawn any more, unless a newer Join has its own room already.
    if (room === joined) {
      room = undefined;
      poses.clear();
      render();
    }
    setJoined(false);
  });
  // Start somewhere near the middle, so two new members do not sit on one spot.
  me.x = Math.round((Math.random() * 8 - 4) * 2) / 2;
  me.z = Math.round((Math.random() * 8 - 4) * 2) / 2;
  setJoined(true);
  showState();
  sendPose();
  timers = [setInterval(sendPose, POSE_REFRESH_MS), setInterval(ping, PING_MS)];
  void ping();
}

async function ping() {
  try {
    $('latency').textContent = `${await client.ping()} ms`;
  } catch {
    $('latency').textContent = '-';
  }
}

async function leave() {
  stopTimers();
  const leaving = room;
  // Join is enabled again at once: by the time the server answers, `client` may be a new Join's.
  const leavingClient = client;
  room = undefined;
  poses.clear();
  setJoined(false);
  left = Promise.resolve(leaving?.leave()).finally(() => leavingClient?.close());
  await left;
  render();
}

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  // Join is disabled while a Join is under way or done; a submit made by script still comes here.
  if ($('join').disabled) {
    return;
  }
  join().catch((error) => {
    showError(error);
    setJoined(false);
  });
});
$('leave').addEventListener('click', () => void leave().catch(showError));
$('step').addEventListener('click', () => move(1, 0));
$('turn').addEventListener('click', () => move(0, 1));

const KEYS = {
  ArrowUp: [1, 0],
  w: [1, 0],
  ArrowDown: [-1, 0],
  s: [-1, 0],
  ArrowLeft: [0, -1],
  a: [0, -1],
  ArrowRight: [0, 1],
  d: [0, 1],
};
$('map').addEventListener('keydown', (event) => {
  const keys = KEYS[event.key];
  if (keys && room) {
    event.preventDefault();
    move(...keys);
  }
});

// Wander: a step and a small random turn every 200 ms (5 poses/s, far below the pose budget).
$('wander').addEventListener('change', () => {
  clearInterval(wander);
  if ($('wander').checked) {
    wander = setInterval(() => {
      // Turn back towards the middle near an edge, else drift.
      const nearEdge = Math.abs(me.x) > 8 || Math.abs(me.z) > 8;
      move(1, nearEdge ? 2 : Math.round(Math.random() * 2 - 1));
    }, 200);
  }
});

$('annotation-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('annotation-text').value.trim();
  if (!room || !text) {
    return;
  }
  const id = `a-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  room
    .updateState(
      { ops: [{ op: 'add', collection: 'annotations', id, item: { text } }] },
      { retryOnStale: true },
    )
    .then(() => {
      $('annotation-text').value = '';
    }, showError);
});

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('chat-text').value.trim();
  if (!room || !text) {
    return;
  }
  // A broadcast does not come back to its sender: show ours here.
  room.broadcast({ type: 'chat_message', data: { text } });
  appendChat($('chat'), `${$('name').value.trim()} (you)`, text);
  $('chat-text').value = '';
});

render();
