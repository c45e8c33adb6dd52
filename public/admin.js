// /admin: polls /stats every 2 s, and /stats/rooms/<id> for the room picked in the list. The key the user types stays in this tab's sessionStorage and
// goes out only as an Authorization header, never in a URL (URLs end up in logs and history).
const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'gms-admin-key';
const POLL_MS = 2000;

/** The previous answer, for the per-second rates. */
let previous;
/** The room whose members are shown; picked by clicking its row. */
let selectedRoom;

function setStatus(state, text) {
  $('status').textContent = text;
  $('status').dataset.state = state;
}

function showError(text) {
  $('error').hidden = !text;
  $('error').textContent = text ?? '';
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : '-';
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = String(text);
  return td;
}

/** A table row of text cells, tagged with `data-<key>` so tests and styles can find it. */
function row(key, value, texts) {
  const tr = document.createElement('tr');
  tr.dataset[key] = value;
  tr.append(...texts.map(cell));
  return tr;
}

function perSecond(now, before, seconds) {
  return before === undefined || seconds <= 0 ? '-' : ((now - before) / seconds).toFixed(1);
}

function renderTotals(stats, seconds) {
  if (!stats) {
    $('totals').replaceChildren();
    return;
  }
  const rows = [
    ['Rooms', stats.totalRooms],
    ['Users', stats.totalUsers],
    ['Connections', stats.connections],
    ['Dropped messages', stats.droppedMessages],
    ['Drops per second', perSecond(stats.droppedMessages, previous?.droppedMessages, seconds)],
  ];
  if (stats.instances !== undefined) {
    rows.push(['Instances (cluster)', stats.instances]);
    rows.push(['Redis recoveries', stats.redisRecoveries]);
    rows.push(['Last Redis recovery', time(stats.lastRedisRecoveryAt)]);
  }
  $('totals').replaceChildren(
    ...rows.flatMap(([name, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = String(value);
      dd.dataset.total = name;
      return [dt, dd];
    }),
  );
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function selectButton(roomId) {
  const td = document.createElement('td');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link';
  button.textContent = roomId;
  button.addEventListener('click', () => {
    selectedRoom = roomId;
    void poll();
  });
  td.append(button);
  return td;
}

function renderRooms(rooms, seconds) {
  $('rooms-note').hidden = rooms !== undefined;
  const before = new Map((previous?.rooms ?? []).map((room) => [room.roomId, room]));
  $('rooms').replaceChildren(
    ...(rooms ?? []).map((room) => {
      const tr = document.createElement('tr');
      tr.dataset.roomId = room.roomId;
      tr.classList.toggle('selected', room.roomId === selectedRoom);
      tr.append(
        selectButton(room.roomId),
        cell(room.name ?? ''),
        cell(room.userCount),
        cell(room.persistent ? 'yes' : 'no'),
        cell(room.droppedMessages ?? 0),
        cell(
          perSecond(room.droppedMessages ?? 0, before.get(room.roomId)?.droppedMessages, seconds),
        ),
        cell(time(room.createdAt)),
        cell(time(room.lastActivity)),
      );
      return tr;
    }),
  );
}

function renderMembers(room) {
  $('members-room').textContent = room ? `of ${room.roomId}` : '(pick a room above)';
  $('members').replaceChildren(
    ...(room?.users ?? []).map((user) =>
      row('userId', user.id, [
        user.id,
        user.name,
        user.role,
        user.connected ? 'yes' : 'no (seat held)',
        time(user.lastSeen),
      ]),
    ),
  );
}

function renderInstances(instances) {
  $('instances-section').hidden = instances === undefined;
  $('instances').replaceChildren(
    ...(instances ?? []).map((instance) =>
      row('instanceId', instance.instanceId, [
        instance.instanceId,
        instance.connections,
        instance.droppedMessages,
        time(instance.startedAt),
      ]),
    ),
  );
}

/** The picked room's members; forgets the pick when the room is gone. */
async function pollMembers(rooms) {
  if (!selectedRoom || !rooms?.some((room) => room.roomId === selectedRoom)) {
    selectedRoom = undefined;
    renderMembers(undefined);
    return;
  }
  const response = await fetch(`/stats/rooms/${encodeURIComponent(selectedRoom)}`, {
    headers: authHeaders(),
    cache: 'no-store',
  });
  renderMembers(response.ok ? await response.json() : undefined);
}

async function poll() {
  try {
    const response = await fetch('/stats', { headers: authHeaders(), cache: 'no-store' });
    if (response.status === 401) {
      // Nothing the key before (forgotten, or now a wrong one) was shown may stay on screen.
      previous = undefined;
      selectedRoom = undefined;
      renderTotals(undefined, 0);
      renderRooms([], 0);
      renderInstances(undefined);
      renderMembers(undefined);
      setStatus('error', 'key needed');
      showError('The server wants the API key (or an admin token in JWT mode).');
      return;
    }
    if (!response.ok) {
      setStatus('error', `HTTP ${response.status}`);
      showError(await response.text());
      return;
    }
    const stats = await response.json();
    const now = Date.now();
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    renderTotals(stats, seconds);
    renderRooms(stats.rooms, seconds);
    renderInstances(stats.instanceList);
    await pollMembers(stats.rooms);
    previous = { ...stats, at: now };
    setStatus('ok', 'live');
    showError(undefined);
    $('updated').textContent = new Date(now).toLocaleTimeString();
  } catch (error) {
    setStatus('error', 'unreachable');
    showError(String(error));
  }
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('key').value;
  if (key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  } else {
    sessionStorage.removeItem(KEY_STORAGE);
  }
  $('key').value = '';
  previous = undefined;
  void poll();
});
$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  previous = undefined;
  void poll();
});

void poll();
setInterval(() => void poll(), POLL_MS);
