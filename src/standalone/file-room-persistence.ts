import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { prepareDataDir } from '../config/environment.js';
import { ID_PATTERN, type RoomState, type StateItem } from '../protocol/protocol.js';
import type { PersistedRoom, RoomPersistence } from './room-persistence.js';
import type { GrantableRole, RoomConfig, RoomOwner } from '../rooms/room-store.js';

const FORMAT = 1;
const ROOM_FILE = /^room-([a-z0-9._~-]{1,128})\.json$/;
/** Temporary files of writes that never completed (the process died between write and rename). */
const TEMP_FILE = /^\..+\.[0-9a-f]{16}\.tmp$/;
const GRANTABLE_ROLES: readonly GrantableRole[] = ['editor', 'viewer'];

/**
 * The file of a room: `room-<id>.json`, with each upper-case letter written as `~` and the letter
 * in lower case, so that ids differing only in case stay apart on case-insensitive disks. The
 * prefix keeps ids such as `.` and `..` from naming anything but a plain file. Anything that is
 * not a room id is refused.
 */
export function roomFileName(roomId: string): string {
  if (!ID_PATTERN.test(roomId)) {
    throw new Error(`Refusing to store a room with the id ${JSON.stringify(roomId)}`);
  }
  return `room-${roomId.replace(/[A-Z]/g, (letter) => `~${letter.toLowerCase()}`)}.json`;
}

/** The room id a file name encodes, or undefined when it is not exactly the name of a room. */
export function roomIdOfFile(fileName: string): string | undefined {
  const match = ROOM_FILE.exec(fileName);
  if (!match) {
    return undefined;
  }
  const roomId = match[1].replace(/~([a-z])/g, (_, letter: string) => letter.toUpperCase());
  return ID_PATTERN.test(roomId) && roomFileName(roomId) === fileName ? roomId : undefined;
}

/**
 * Persistent rooms as one JSON file each in DATA_DIR. A write goes to a temporary file in the
 * same folder, is flushed to the disk, renamed over the room's file and made durable by flushing
 * the folder: a crash at any point leaves either the old file or the new one, never a torn one.
 */
export class FileRoomPersistence implements RoomPersistence {
  private readonly logger = new Logger(FileRoomPersistence.name);
  /** Per room with writes in flight: the end of its chain (never rejects). */
  private readonly chains = new Map<string, Promise<void>>();

  private constructor(readonly dir: string) {}

  /** Creates and checks the folder first: a ConfigValidationError naming DATA_DIR if unusable. */
  static open(dataDir: string): FileRoomPersistence {
    return new FileRoomPersistence(prepareDataDir(dataDir));
  }

  async loadAll(): Promise<PersistedRoom[]> {
    const rooms: PersistedRoom[] = [];
    for (const name of (await readdir(this.dir)).sort()) {
      const path = join(this.dir, name);
      if (TEMP_FILE.test(name)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const roomId = roomIdOfFile(name);
      if (roomId === undefined) {
        if (name.startsWith('room-') && name.endsWith('.json')) {
          this.logger.warn(`Skipping ${path}: not the file name of a room id`);
        }
        continue;
      }
      try {
        rooms.push(parseRoomFile(await readFile(path, 'utf8'), roomId));
      } catch (error) {
        this.logger.error(`Skipping ${path}: ${reasonOf(error)}`);
      }
    }
    this.logger.log(`Loaded ${rooms.length} persistent room(s) from ${this.dir}`);
    return rooms;
  }

  async save(room: PersistedRoom): Promise<void> {
    const path = this.pathOf(room.roomId);
    // Serialized now: the caller's snapshot, whatever happens to its objects while queued.
    const text = `${JSON.stringify({ format: FORMAT, ...room })}\n`;
    await this.chain(room.roomId, async () => {
      const temp = this.tempPathFor(path);
      try {
        await writeAndFlush(temp, text);
        await rename(temp, path);
      } catch (error) {
        await unlink(temp).catch(() => undefined);
        throw error;
      }
      await this.flushFolder();
    });
  }

  async remove(roomId: string): Promise<void> {
    const path = this.pathOf(roomId);
    await this.chain(roomId, async () => {
      try {
        await unlink(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          return;
        }
        throw error;
      }
      await this.flushFolder();
    });
  }

  private pathOf(roomId: string): string {
    return join(this.dir, roomFileName(roomId));
  }

  /** A fresh hidden name in the same folder, so that the rename stays on one file system. */
  private tempPathFor(path: string): string {
    return join(this.dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  }

  /** Makes the rename or unlink itself durable: it lives in the folder's entries. */
  private async flushFolder(): Promise<void> {
    // Windows cannot open a folder as a file; NTFS journals renames.
    if (process.platform === 'win32') {
      return;
    }
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Runs `task` once the room's earlier writes have settled, whatever their outcome. */
  private chain(roomId: string, task: () => Promise<void>): Promise<void> {
    const result = (this.chains.get(roomId) ?? Promise.resolve()).then(task);
    const settled = result.catch(() => undefined);
    this.chains.set(roomId, settled);
    void settled.then(() => {
      if (this.chains.get(roomId) === settled) {
        this.chains.delete(roomId);
      }
    });
    return result;
  }
}

async function writeAndFlush(path: string, text: string): Promise<void> {
  // Owner-only: the file holds the room's password hash.
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

class InvalidRoomFile extends Error {}

function check(condition: boolean, problem: string): asserts condition {
  if (!condition) {
    throw new InvalidRoomFile(problem);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Reads a room file back, checking every field it restores; unknown fields are dropped. */
export function parseRoomFile(text: string, roomId: string): PersistedRoom {
  const file: unknown = JSON.parse(text);
  check(isObject(file), 'not a JSON object');
  check(file.format === FORMAT, `unknown format ${JSON.stringify(file.format)}`);
  check(file.roomId === roomId, `its roomId ${JSON.stringify(file.roomId)} is not ${roomId}`);
  check(isTime(file.createdAt), 'createdAt is not a time');
  check(isTime(file.lastActivity), 'lastActivity is not a time');
  const owner = parseOwner(file.owner);
  return {
    roomId,
    config: parseConfig(file.config),
    createdAt: file.createdAt,
    lastActivity: file.lastActivity,
    ...(owner ? { owner } : {}),
    state: parseState(file.state),
  };
}

/**
 * Files written before room quotas have no owner, and one that cannot be read is dropped rather
 * than the room: either way the room counts against nobody.
 */
function parseOwner(owner: unknown): RoomOwner | undefined {
  if (
    isObject(owner) &&
    (owner.kind === 'user' || owner.kind === 'ip') &&
    typeof owner.id === 'string' &&
    owner.id.length > 0
  ) {
    return { kind: owner.kind, id: owner.id };
  }
  return undefined;
}

function parseConfig(config: unknown): RoomConfig {
  check(isObject(config), 'config is not an object');
  const { name, maxUsers, passwordHash, persistent, defaultRole } = config;
  check(name === undefined || typeof name === 'string', 'config.name is not a string');
  check(
    typeof maxUsers === 'number' && Number.isInteger(maxUsers) && maxUsers >= 1,
    'config.maxUsers is not a positive integer',
  );
  check(
    passwordHash === undefined || (typeof passwordHash === 'string' && passwordHash.length > 0),
    'config.passwordHash is not a string',
  );
  check(persistent === true, 'config.persistent is not true');
  check(
    GRANTABLE_ROLES.includes(defaultRole as GrantableRole),
    'config.defaultRole is not editor or viewer',
  );
  return {
    ...(name !== undefined ? { name } : {}),
    maxUsers,
    ...(passwordHash !== undefined ? { passwordHash } : {}),
    persistent,
    defaultRole: defaultRole as GrantableRole,
  };
}

function parseState(state: unknown): RoomState {
  check(isObject(state), 'state is not an object');
  const { version, sceneUrl, sceneLoaded, treeViewState, sessionSettings } = state;
  check(
    typeof version === 'number' && Number.isInteger(version) && version >= 0,
    'state.version is not a version',
  );
  check(sceneUrl === null || typeof sceneUrl === 'string', 'state.sceneUrl is not a string');
  check(
    sceneLoaded === null || typeof sceneLoaded === 'boolean',
    'state.sceneLoaded is not a boolean',
  );
  check(treeViewState === null || isObject(treeViewState), 'state.treeViewState is not an object');
  check(
    sessionSettings === null || isObject(sessionSettings),
    'state.sessionSettings is not an object',
  );
  // null: an earlier version let update_state set these sections to null. Read as their initial
  // values rather than skipping the whole room, annotations and all.
  return {
    version,
    sceneUrl,
    sceneLoaded: sceneLoaded ?? false,
    treeViewState: treeViewState ?? {},
    annotations: parseItems(state.annotations, 'annotations'),
    focusPoints: parseItems(state.focusPoints, 'focusPoints'),
    sessionSettings: sessionSettings ?? {},
  };
}

function parseItems(items: unknown, collection: string): StateItem[] {
  check(Array.isArray(items), `state.${collection} is not a list`);
  for (const item of items as unknown[]) {
    check(
      isObject(item) && typeof item.id === 'string',
      `state.${collection} holds an item without an id`,
    );
  }
  return items as StateItem[];
}
