// Drawing and list rendering for /demo. Text goes in with textContent only, so a member's name
// or a chat line can never become markup.

/** World units shown from the centre to each edge of the map. */
const HALF_EXTENT = 10;

/**
 * Where a rotation quaternion [x, y, z, w] points on the floor: the viewer's forward (-Z, as in
 * three.js cameras) turned by it, as its x and z parts.
 */
export function headingOf([x, y, z, w]) {
  return { fx: -2 * (w * y + x * z), fz: 2 * (x * x + y * y) - 1 };
}

/** A yaw (radians, about +Y) as a quaternion [x, y, z, w]. */
export function yawQuaternion(yaw) {
  return [0, Math.sin(yaw / 2), 0, Math.cos(yaw / 2)];
}

function colourOf(id) {
  let hash = 0;
  for (const char of id) {
    hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  }
  return `hsl(${hash % 360} 65% 45%)`;
}

/** markers: [{ id, label, x, z, fx, fz, self, connected }] */
export function drawMap(canvas, markers) {
  const context = canvas.getContext('2d');
  const { width, height } = canvas;
  const scale = width / (2 * HALF_EXTENT);
  context.clearRect(0, 0, width, height);
  context.strokeStyle = '#e3e7ef';
  for (let unit = -HALF_EXTENT; unit <= HALF_EXTENT; unit += 2) {
    context.beginPath();
    context.moveTo(width / 2 + unit * scale, 0);
    context.lineTo(width / 2 + unit * scale, height);
    context.moveTo(0, height / 2 + unit * scale);
    context.lineTo(width, height / 2 + unit * scale);
    context.stroke();
  }
  context.font = '12px system-ui, sans-serif';
  for (const marker of markers) {
    // Top-down: +x to the right, +z down the screen, so "forward" (-z) is up.
    const px = width / 2 + marker.x * scale;
    const py = height / 2 + marker.z * scale;
    const colour = marker.connected ? colourOf(marker.id) : '#9aa1b1';
    context.fillStyle = colour;
    context.strokeStyle = colour;
    context.beginPath();
    context.arc(px, py, marker.self ? 9 : 7, 0, 2 * Math.PI);
    context.fill();
    context.beginPath();
    context.moveTo(px, py);
    context.lineTo(px + marker.fx * 18, py + marker.fz * 18);
    context.lineWidth = 3;
    context.stroke();
    context.lineWidth = 1;
    context.fillText(marker.self ? `${marker.label} (you)` : marker.label, px + 11, py - 9);
  }
}

function item(text, attributes = {}) {
  const li = document.createElement('li');
  li.textContent = text;
  for (const [name, value] of Object.entries(attributes)) {
    li.setAttribute(name, value);
  }
  return li;
}

/** members: RoomUser[]; poses: Map userId -> { x, z }. */
export function renderMembers(list, members, poses, selfId) {
  list.replaceChildren(
    ...members.map((user) => {
      const pose = poses.get(user.id);
      const where = pose ? ` at ${pose.x.toFixed(1)}, ${pose.z.toFixed(1)}` : '';
      const li = item(
        `${user.name || user.id}${user.id === selfId ? ' (you)' : ''}: ${user.role}, ` +
          `${user.connected ? 'connected' : 'disconnected'}${where}`,
        { 'data-user-id': user.id },
      );
      li.classList.toggle('offline', !user.connected);
      return li;
    }),
  );
}

export function renderAnnotations(list, annotations) {
  list.replaceChildren(
    ...annotations.map((annotation) =>
      item(typeof annotation.text === 'string' ? annotation.text : annotation.id),
    ),
  );
}

export function appendChat(list, who, text) {
  list.append(item(`${who}: ${text}`));
  list.scrollTop = list.scrollHeight;
}
