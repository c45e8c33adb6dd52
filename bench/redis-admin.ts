// --split's own small Redis client: is Redis there, is it a process of this host (for its CPU),
// and deleting the keys of the prefixes the cluster layouts used. ioredis is loaded only here,
// so the other modes never pay for it.
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Redis } from 'ioredis';
import { withTimeout } from './clock.js';
import type { WindowWatch } from './measure.js';
import { CpuWindow, rssBytesOf } from './proc-stats.js';
import { listeningPortsOf } from './server-process.js';

const ANSWER_TIMEOUT_MS = 3000;
const SCAN_COUNT = 1000;
const MB = 1024 * 1024;

/** Redis during a layout's window. pid and cpuPercent are null when Redis is not on this host. */
export interface RedisFigures {
  pid: number | null;
  cpuPercent: number | null;
  rssMb: number | null;
  /** Why there are no figures, or a caveat about them. */
  note: string | null;
}

/** Redis's process on this host, or why it cannot be measured. */
export interface RedisProcess {
  pid: number | null;
  note: string | null;
}

export interface RedisServerInfo {
  version: string | undefined;
  processId: number | undefined;
  port: number | undefined;
}

export class RedisUnavailableError extends Error {}

/** The URL without its password, for output. */
export function redactedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      parsed.password = '***';
    }
    return parsed.toString();
  } catch {
    return url;
  }
}

export class RedisAdmin {
  private constructor(private readonly client: Redis) {}

  /** Connects and PINGs; throws RedisUnavailableError, saying what to do, if Redis does not answer. */
  static async connect(url: string): Promise<RedisAdmin> {
    const { Redis } = await import('ioredis');
    const client = new Redis(url, {
      lazyConnect: true,
      connectionName: 'gms-bench',
      connectTimeout: ANSWER_TIMEOUT_MS,
      commandTimeout: ANSWER_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      // A dropped connection comes back for the cleanup at the end, but nothing waits long.
      retryStrategy: (times: number) => (times > 5 ? null : 200),
    });
    // ioredis reports the cause (ECONNREFUSED...) as an 'error' event; connect() only rejects
    // with 'Connection is closed.'.
    let cause: string | undefined;
    client.on('error', (error: Error) => (cause ??= error.message));
    try {
      await withTimeout(
        client.connect().then(() => client.ping()),
        ANSWER_TIMEOUT_MS * 2,
        'PING',
      );
    } catch (error) {
      client.disconnect();
      const why = cause ?? (error instanceof Error ? error.message : String(error));
      throw new RedisUnavailableError(
        `--split needs a Redis, but ${redactedRedisUrl(url)} does not answer (${why}). Start one ` +
          `(e.g. 'redis-server --save "" --appendonly no') or point --redis-url (or TEST_REDIS_URL) at one.`,
      );
    }
    return new RedisAdmin(client);
  }

  async serverInfo(): Promise<RedisServerInfo> {
    const text = await this.client.info('server');
    const field = (name: string): string | undefined =>
      new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim();
    const number = (value: string | undefined): number | undefined =>
      value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
    return {
      version: field('redis_version'),
      processId: number(field('process_id')),
      port: number(field('tcp_port')),
    };
  }

  /** Deletes every key that starts with prefix (SCAN MATCH, never KEYS); returns how many. */
  async deleteKeys(prefix: string): Promise<number> {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) {
        deleted += await this.client.del(...keys);
      }
    } while (cursor !== '0');
    return deleted;
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

/**
 * Redis's process on this host, if it is one: its URL's host is an address of this machine,
 * INFO's process_id is a process here whose name says Redis (Valkey, KeyDB), and, where its
 * sockets can be read, it listens on INFO's port. Otherwise (another host, or a container with
 * its own PID namespace, where process_id means another process here) its CPU is n/a.
 */
export async function locateRedisProcess(
  url: string,
  info: RedisServerInfo,
): Promise<RedisProcess> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (!(await isThisHost(host))) {
    return { pid: null, note: `n/a: Redis runs on ${host}, not on this host` };
  }
  const pid = info.processId;
  if (pid === undefined) {
    return { pid: null, note: 'n/a: INFO server gives no process_id' };
  }
  let name: string;
  try {
    name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return { pid: null, note: `n/a: Redis's process_id ${pid} is no process of this host` };
  }
  if (!/redis|valkey|keydb/i.test(name)) {
    return {
      pid: null,
      note:
        `n/a: process ${pid} here is '${name}', not Redis: Redis runs in its own PID namespace ` +
        '(a container?)',
    };
  }
  const ports = listeningPortsOf(pid);
  if (info.port !== undefined && ports.length > 0 && !ports.includes(info.port)) {
    return {
      pid: null,
      note: `n/a: the Redis process ${pid} here listens on ${ports.join(', ')}, not ${info.port}`,
    };
  }
  return { pid, note: null };
}

async function isThisHost(host: string): Promise<boolean> {
  const local = new Set<string>(['127.0.0.1', '::1']);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      local.add(address.address);
    }
  }
  const isLocal = (address: string): boolean => local.has(address) || address.startsWith('127.');
  if (isIP(host) !== 0) {
    return isLocal(host);
  }
  try {
    const resolved = await lookup(host, { all: true });
    return resolved.length > 0 && resolved.every((entry) => isLocal(entry.address));
  } catch {
    return false;
  }
}

/** Redis's CPU over exactly a step's window, from /proc/PID/stat, and its RSS at the end. */
export class RedisWatch implements WindowWatch {
  private cpu: CpuWindow | undefined;
  private cpuPercent: number | undefined;
  private rssBytes: number | undefined;

  constructor(private readonly redis: RedisProcess) {}

  windowStarted(): void {
    this.cpu = this.redis.pid === null ? undefined : new CpuWindow(this.redis.pid);
  }

  windowEnded(): void {
    this.cpuPercent = this.cpu?.percent();
    this.rssBytes = this.redis.pid === null ? undefined : rssBytesOf(this.redis.pid);
  }

  figures(): RedisFigures {
    if (this.redis.pid === null) {
      return { pid: null, cpuPercent: null, rssMb: null, note: this.redis.note };
    }
    const measured = this.cpuPercent !== undefined;
    return {
      pid: this.redis.pid,
      cpuPercent: this.cpuPercent ?? null,
      rssMb: this.rssBytes === undefined ? null : this.rssBytes / MB,
      note: measured ? this.redis.note : 'n/a: the step ended before its window',
    };
  }
}
