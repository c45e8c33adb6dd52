// /admin: polls /stats every 2 s. The key the user types stays in this tab's sessionStorage and
// goes out only as an Authorization header, never in a URL (URLs end up in logs and history).
const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'gms-admin-key';
const POLL_MS = 2000;

/** The previous answer, for the per-second rates. */
let previous;

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

function perSecond(now, before, seconds) {
  return before === undefined || seconds <= 0 ? '-' : ((now - before) / seconds).toFixed(1);
}

function renderTotals(stats, seconds) {
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

function renderRooms(rooms, seconds) {
  $('rooms-note').hidden = rooms !== undefined;
  const before = new Map((previous?.rooms ?? []).map((room) => [room.roomId, room]));
  $('rooms').replaceChildren(
    ...(rooms ?? []).map((room) => {
      const tr = document.createElement('tr');
      tr.dataset.roomId = room.roomId;
      tr.append(
        cell(room.roomId),
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

async function poll() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  try {
    const response = await fetch('/stats', {
      headers: key ? { Authorization: `Bearer ${key}` } : {},
      cache: 'no-store',
    });
    if (response.status === 401) {
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
