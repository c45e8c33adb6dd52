// Command-line options, their defaults and the --help text.
import type { ClientKind } from './worker-messages.js';

export type Mode = 'load' | 'ladder' | 'connections' | 'overload' | 'smoke' | 'split';

export interface Step {
  rooms: number;
  usersPerRoom: number;
}

export interface BenchOptions {
  mode: Mode;
  /** A running server to target instead of starting ours. */
  url: string | undefined;
  steps: Step[];
  hz: number;
  durationS: number;
  warmupS: number;
  connections: number;
  usersPerRoom: number;
  settleS: number;
  workers: number | 'auto';
  client: ClientKind;
  sampleEvery: number;
  serverEnv: Record<string, string>;
  baseline: boolean;
  /** --baseline-only: no run against our server (or --url). */
  baselineOnly: boolean;
  cpuProf: boolean;
  jsonOnly: boolean;
  connectTimeoutS: number;
  /** --split: server instances of the split layout (at least 2). */
  splitInstances: number;
  /** --split: the Redis the cluster layouts share. */
  redisUrl: string;
  /** --tick-ms: server ticks for poses (POSE_TICK_MS) on both servers; 0: per message. */
  tickMs: number;
  /** --busy-tenant: % of one core another process keeps busy during the run; 0: none. */
  busyTenantPercent: number;
  /** --binary: the users speak gallery.v2 (binary pose frames); so does the baseline. */
  binary: boolean;
  /** --quantized (needs --binary): gallery.v2q, 16-byte quantized entries; so does the baseline. */
  quantized: boolean;
  /** --repeat: rounds of each step, the servers' order alternating; medians reported at the end. */
  repeat: number;
  /** --side-by-side: both servers of a step at once, each loaded by its own generator. */
  sideBySide: boolean;
}

export const LADDER_STEPS: Step[] = [
  { rooms: 10, usersPerRoom: 10 },
  { rooms: 10, usersPerRoom: 20 },
  { rooms: 20, usersPerRoom: 20 },
  { rooms: 20, usersPerRoom: 30 },
  { rooms: 20, usersPerRoom: 50 },
];

export const OVERLOAD_STEPS: Step[] = [
  { rooms: 20, usersPerRoom: 50 },
  { rooms: 20, usersPerRoom: 100 },
  { rooms: 20, usersPerRoom: 20 },
];

export const SMOKE_STEP: Step = { rooms: 2, usersPerRoom: 3 };
export const DEFAULT_CONNECTIONS = 5000;
export const SPLIT_STEP: Step = { rooms: 20, usersPerRoom: 20 };
export const DEFAULT_SPLIT_INSTANCES = 2;
const MAX_SPLIT_INSTANCES = 16;
/** The issue's target: the split layout delivers at least this share of the single instance's. */
export const SPLIT_TARGET_RATIO = 0.7;
export const DEFAULT_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Environment the bench sets per --split layout; --server-env may not override it. */
const SPLIT_OWNED_ENV = ['REDIS_URL', 'REDIS_KEY_PREFIX'];

export const HELP = `npm run bench -- [options]        (or: node dist-bench/cli.js [options])

Load tester for the gallery multiplayer server. Simulated users connect, join rooms
(join_room, waiting for room_joined) and broadcast pose_update messages at --hz, with
their phases spread evenly. Every step runs against OUR server (node dist/main.js) and
then against a BASELINE, a minimal plain-ws fan-out server of the bench's own, each
started fresh as a child process, so that every figure comes with a ratio ours/baseline
(except --split, which compares layouts of our server).

MODES (pick at most one; the default is one step of --rooms x --users-per-room)
  --ladder                Steps 10x10, 10x20, 20x20, 20x30, 20x50 (rooms x users per room).
  --steps RxU,RxU,...     Your own ladder, e.g. --steps 5x10,10x10 (implies --ladder), or
                          with --overload its own sequence of steps on the one server.
  --connections [N]       N idle joined users (default ${DEFAULT_CONNECTIONS}) in rooms of --users-per-room:
                          idle server RSS, RSS once all joined and settled, and
                          RSS per connection = (joined RSS - idle RSS) / N.
  --overload              20x50, then 20x100, then 20x20 again (recovery) on ONE server
                          process per server kind. Adds a probe in room bench-0: an actor
                          makes a third user join/leave and sends update_state once a second
                          in the window (the last a second before its end); a reader times
                          user_joined/user_left/state_updated (p95, max). The probe runs in a
                          thread of its own, so the bench's own work does not delay its reader.
                          The baseline does not speak those events: no probe for it.
  --smoke                 CI check: 2 rooms x 3 users, warmup 1 s, duration 2 s. Exits 1 if a
                          server failed to start, a step delivered nothing, or had errors,
                          join failures or dropped connections. No timing thresholds.
  --split [N]             Cluster mode: the same rooms spread over N instances (default ${DEFAULT_SPLIT_INSTANCES})
                          versus all on one, in one run. One step (default ${SPLIT_STEP.rooms}x${SPLIT_STEP.usersPerRoom}; --rooms and
                          --users-per-room set it), the same load on three layouts in turn,
                          each on fresh server processes:
                            single  one instance with REDIS_URL (cluster mode), every user on it;
                            split   N instances with REDIS_URL on the same Redis; user u of
                                    every room connects to instance u % N, so every room has
                                    members on every instance and every pose crosses Redis;
                            local   one instance without REDIS_URL (the default mode), for
                                    reference.
                          The cluster layouts get fresh key prefixes (bench-split-<pid>-<random>-
                          <layout>:), whose keys are deleted afterwards (SCAN + DEL).
                          Per layout: deliv/s, delivery ratio, latency, errors, CPU% and RSS of
                          each server process and their sum, Redis's CPU% over the window (from
                          /proc when Redis runs on this host, else n/a), and the bench's own
                          CPU. Then ratios split/single, split/local, single/local.
                          Target (from the issue): at ${SPLIT_TARGET_RATIO}x or more of single's deliv/s at 20x20.
                          The instances, Redis and the load generator share this machine's
                          cores: read the CPU line of each layout before the ratio.
                          The baseline is not part of this mode: it has no cluster mode.
                          Needs --users-per-room >= N; not with --url or --cpu-prof. Exits 1
                          if a layout failed to run (missing the target does not fail it).

OPTIONS
  --url URL               Target a running server (ws://host:port/) instead of starting ours.
                          No server CPU/RSS for it then; the baseline still runs locally.
  --rooms N               Rooms in the step (default 10; 20 with --split).
  --users-per-room N      Users per room (default 10; 20 with --split; at least 2).
  --hz N                  Poses per user per second (default 33).
  --duration S            Measured window in seconds (default 10).
  --warmup S              Seconds of sending before the window starts (default 3).
  --settle S              --connections: wait after the joins before reading RSS (default 5).
  --workers N|auto        Generator worker threads (default auto: 1, or 2 when the step
                          offers more than 300,000 deliveries/s and the host has 2+ cores).
  --sample-every N        Time every N-th received pose for latency (default 16).
  --client raw|ws         The simulated users' WebSocket client: raw (default), the bench's
                          own, which counts frames in the TCP stream without allocating; or
                          ws, the ws package (about 2 us per received frame), to cross-check.
  --server-env KEY=VALUE  Extra environment for our server, after the bench's own
                          (PORT=0 HOST=127.0.0.1 LOG_LEVEL=warn MAX_USERS_PER_ROOM MAX_ROOMS).
                          Repeatable.
  --tick-ms N             Server ticks for poses on both servers: POSE_TICK_MS=N for ours, and
                          the baseline keeps each sender's newest pose and sends it every N ms
                          too (default 0: every pose relayed as it arrives). A pose overtaken
                          by a newer one of its sender within a tick is not sent, so a step
                          offers one pose per recipient for each tick a sender's sends gave a
                          fresh pose to: each send counts min(1, gap / N ms), gap since the
                          user's previous send, so a send the generator made late does not
                          count the tick it missed against the server:
                          offered = min(that sum, senders x window / N ms) x (members - 1).
                          generator.lateSendTicks: the sender-ticks so left out.
  --busy-tenant PERCENT   Another process keeps one core busy PERCENT% of the time (busy for
                          PERCENT ms of every 100) from the first step to the last, so that
                          servers compare under the same contention, as on a busy shared
                          machine (default 0: none). Not counted as background load.
  --binary                Poses over the binary channel (docs/binary-poses.md) on both servers:
                          the users offer subprotocol gallery.v2, learn their slots from
                          room_joined/user_joined, send each pose as a binary client frame and
                          count every entry of another member in the binary server frames they
                          receive (own slot skipped); latency from the entry's timestamp. The
                          baseline speaks it too (slots per room, one binary frame per relay,
                          or per room and tick with --tick-ms). A server that gives no slot
                          in room_joined fails the joins. Entries from slots of no known member
                          are not counted: generator.unknownSlotPoses.
  --quantized             With --binary: the quantized form on both servers. The users offer
                          gallery.v2q, send 16-byte entries (f16 position, smallest-three
                          rotation, low 32 bits of the ms timestamp) and read the 16-byte
                          entries of server frames with flags 1; latency from the entry's time,
                          restored as the nearest to the receiver's clock (whole ms: it reads up
                          to 1 ms high). The baseline relays the entries as they came.
  --repeat N              Run each step N times (1-20; default 1), on fresh servers each time,
                          the order alternating: ours then the baseline in odd rounds, the
                          baseline then ours in even ones, so a drift of the machine's speed
                          over the run weighs on both. Every round prints its rows and JSON
                          line as usual ("round"); then per step the medians of each server,
                          the ratio of the medians, and the lowest and highest of the rounds'
                          own ratios (a JSON line of type "repeat"). On a shared or virtual
                          machine whose speed wanders, one round's ratio can be off by a
                          third: read the medians. Not with --overload, --connections or
                          --split.
  --side-by-side          Run ours (or --url) and the baseline AT ONCE, each with its own
                          generator and the whole step, sending from the moment both have
                          joined their users, so that their windows cover the same seconds and
                          a change in the machine's speed weighs on both alike. The machine
                          then carries twice the step: halve --rooms to compare at the load of
                          one step (--rooms 10 --users-per-room 50 for 1,000 users in all).
                          The step lines get "sideBySide":true. With --repeat, rounds of such
                          pairs. Not with --overload, --connections, --split, --no-baseline
                          or --baseline-only.
  --no-baseline           Skip the baseline (no ratios).
  --baseline-only         Run the steps against the baseline alone (no ratios): to check the
                          bench itself against a server that is the same every time.
  --cpu-prof              Run our server with node --cpu-prof; after each step (server
                          stopped with SIGTERM) print the top 20 functions by self time, in %
                          of the samples taken in the measured window ((idle) left out).
                          With --overload, one profile covers the windows of all steps.
  --connect-timeout S     Longest wait for all users of a step to join (default 60).
  --redis-url URL         --split: the Redis of the cluster layouts (default $TEST_REDIS_URL, else
                          redis://127.0.0.1:6379). The run stops at once if it does not answer.
  --json-only, --quiet    Only the JSON lines, on stdout.
  -h, --help              This text.

OUTPUT
  stdout: one JSON line per step (it starts with '{'): {"type":"step"|"connections", ...,
          "ours":{...},"baseline":{...},"ratio":{...}} ("url" instead of "ours" with --url).
          --split: one line per layout, {"type":"split","layout":"single"|"split"|"local",
          "instances":N,"keyPrefix":...,"ours":{...,"instances":[{pid,url,users,cpuPercent,
          rssMb,rssMaxMb}]},"redis":{pid,cpuPercent,rssMb,note},"ratio":{"splitPerSingle":{...},
          "splitPerLocal":{...},"singlePerLocal":{...}},"target":{...}}; there serverCpuPercent
          and serverRssMb are the sums over the instances, serverRssMaxMb the sum of their peaks.
          --repeat: each round's step line has "round":R,"rounds":N; after the rounds of a step,
          {"type":"repeat","step":...,"rounds":N,"medians":{"ours":{...},"baseline":{...}},
          "ratio":{...},"roundRatios":{"min":{...},"max":{...}}}: medians of deliveredPerSec,
          deliveryRatio, latency p99, serverCpuPercent, serverRssMaxMb and
          serverCpuUsPerDelivery over the rounds that ran, "ratio" the medians' ratios.
          npm prints its own banner first: use 'npm run -s bench', or keep only the lines
          starting with '{'.
  stderr: progress, one table row per server per step, a ratio row, server warnings.
  Fields per server (load steps):
    clients.joined/wanted   users that got room_joined; joinFailures with samples.
    sentPerSec              poses sent by all users per second.
    offeredPerSec           deliveries the sends call for: each send x (room members - 1);
                            with --tick-ms, per tick (see there).
    deliveredPerSec         poses received by the users per second.
    deliveryRatio           delivered / offered over the window (after warmup); sends and
                            receipts are counted in the same window, so with deep queues it
                            can differ from the true share by the frames in flight.
    latencyMs               receive time minus message.timestamp (same machine clock):
                            p50/p95/p99/max over every --sample-every-th pose.
    errors, closes          'error' events and connections the server dropped after the joins.
    serverCpuPercent        server CPU over the window from /proc/PID/stat (100 = one core).
    serverRssMb, serverRssMaxMb   VmRSS at the window's end and the peak of 250 ms samples
                            over the whole step (joins and warmup included).
    serverCpuUsPerDelivery  server CPU microseconds per delivered pose.
    generator               workers, cpuPercent of the whole bench process, per-worker
                            eventLoopUtilization and lag, skipped sends, late-send ticks
                            (--tick-ms), frames parsed (not recognized by their bytes),
                            saturated + reasons.
    host                    cpus; busyPercent: % of all cores busy during the window;
                            backgroundBusyPercent: busy before the step with other processes
                            (not the bench, not its server); 20 or more marks the row.
    probe (--overload)      event latency p95/max in ms, unanswered, skipped, errors.
    serverAccount           ours (or a --url server whose /metrics is open), from its
                            /metrics before and after the window: dropped.shed and
                            dropped.rateLimited (poses refused on arrival, each lost to its
                            whole room), dropped.slowClient (one recipient each); with
                            --tick-ms, ticks.run, ticks.skipped and lateP50Ms/P90Ms/P99Ms
                            (the upper bound of the lateness bucket; null past 1 s).
  ratio: ours/baseline for deliveredPerSec, p99, serverCpuPercent, serverRssMaxMb.
  --connections: idleRssMb, joinedRssMb, rssPerConnectionKb, joined, joinSeconds, ratios.
          RSS moves with the garbage collector and the heap the process already holds:
          compare runs of the same settings rather than single kilobytes.

NOTES
  Needs 'ulimit -n' above the connections of a step (it checks /proc/self/limits).
  The bench, our server and the baseline share this machine: on few cores they compete
  for CPU; the generator says when it was saturated, and host.busyPercent shows contention.
  Ctrl-C stops the servers the bench started; every wait has a timeout.

EXAMPLE
  npm run bench -- --rooms 20 --users-per-room 20 --duration 10 --warmup 3
  npm run -s bench -- --ladder --json-only > ladder.jsonl
  npm run bench -- --connections 5000
  npm run bench -- --overload --server-env CLIENT_BUFFER_SOFT_BYTES=32768
  npm run bench -- --split --rooms 20 --users-per-room 20 --duration 10 --warmup 3
  npm run bench -- --split 3 --redis-url redis://127.0.0.1:6380 --users-per-room 30
  npm run bench -- --url ws://127.0.0.1:8080/ --rooms 5 --users-per-room 10
  npm run bench -- --rooms 20 --users-per-room 50 --tick-ms 33 --binary
  npm run bench -- --rooms 20 --users-per-room 50 --tick-ms 33 --binary --quantized
`;

export class UsageError extends Error {}

type Kind = 'number' | 'string' | 'flag' | 'list' | 'optional-number';

const SPECS: Record<string, Kind> = {
  url: 'string',
  rooms: 'number',
  'users-per-room': 'number',
  hz: 'number',
  duration: 'number',
  warmup: 'number',
  ladder: 'flag',
  steps: 'string',
  connections: 'optional-number',
  settle: 'number',
  overload: 'flag',
  smoke: 'flag',
  workers: 'string',
  client: 'string',
  'sample-every': 'number',
  'server-env': 'list',
  'tick-ms': 'number',
  'busy-tenant': 'number',
  binary: 'flag',
  quantized: 'flag',
  'no-baseline': 'flag',
  'baseline-only': 'flag',
  'cpu-prof': 'flag',
  'connect-timeout': 'number',
  repeat: 'number',
  'side-by-side': 'flag',
  split: 'optional-number',
  'redis-url': 'string',
  'json-only': 'flag',
  quiet: 'flag',
  help: 'flag',
};

type Parsed = Map<string, string | number | boolean | string[]>;

function tokenize(argv: string[]): Parsed {
  const parsed: Parsed = new Map();
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index];
    if (token === '-h') {
      parsed.set('help', true);
      continue;
    }
    if (!token.startsWith('--')) {
      throw new UsageError(`unexpected argument '${token}'`);
    }
    const [name, inline] = splitOnce(token.slice(2), '=');
    const kind = SPECS[name];
    if (kind === undefined) {
      throw new UsageError(`unknown option --${name}`);
    }
    if (kind === 'flag') {
      if (inline !== undefined) {
        throw new UsageError(`--${name} takes no value`);
      }
      parsed.set(name, true);
      continue;
    }
    const next = argv[index + 1];
    const hasNext = next !== undefined && !next.startsWith('--');
    if (kind === 'optional-number' && inline === undefined && !hasNext) {
      parsed.set(name, true);
      continue;
    }
    const value = inline ?? (hasNext ? argv[++index] : undefined);
    if (value === undefined) {
      throw new UsageError(`--${name} needs a value`);
    }
    if (kind === 'list') {
      const list = (parsed.get(name) as string[] | undefined) ?? [];
      parsed.set(name, [...list, value]);
    } else if (kind === 'string') {
      parsed.set(name, value);
    } else {
      parsed.set(name, toNumber(name, value));
    }
  }
  return parsed;
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function toNumber(name: string, value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) {
    throw new UsageError(`--${name} must be a number, not '${value}'`);
  }
  return number;
}

function integerAtLeast(parsed: Parsed, name: string, fallback: number, min: number): number {
  const value = parsed.get(name) ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new UsageError(`--${name} must be an integer of at least ${min}`);
  }
  return value;
}

function numberAbove(parsed: Parsed, name: string, fallback: number, min: number): number {
  const value = parsed.get(name) ?? fallback;
  if (typeof value !== 'number' || value < min) {
    throw new UsageError(`--${name} must be a number of at least ${min}`);
  }
  return value;
}

function parseSteps(text: string): Step[] {
  return text.split(',').map((part) => {
    const match = /^\s*(\d+)x(\d+)\s*$/.exec(part);
    if (!match || Number(match[1]) < 1 || Number(match[2]) < 2) {
      throw new UsageError(`--steps: '${part}' is not ROOMSxUSERS (rooms >= 1, users >= 2)`);
    }
    return { rooms: Number(match[1]), usersPerRoom: Number(match[2]) };
  });
}

function parseServerEnv(entries: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of entries) {
    const [key, value] = splitOnce(entry, '=');
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || value === undefined) {
      throw new UsageError(`--server-env wants KEY=VALUE, not '${entry}'`);
    }
    env[key] = value;
  }
  return env;
}

function parseWorkers(value: string | undefined): number | 'auto' {
  if (value === undefined || value === 'auto') {
    return 'auto';
  }
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 16) {
    throw new UsageError(`--workers must be 'auto' or 1-16, not '${value}'`);
  }
  return count;
}

function parseClient(value: string | undefined): ClientKind {
  if (value === undefined || value === 'raw' || value === 'ws') {
    return value ?? 'raw';
  }
  throw new UsageError(`--client must be 'raw' or 'ws', not '${value}'`);
}

function modeOf(parsed: Parsed): Mode {
  const modes: Mode[] = [];
  if (parsed.has('ladder') || (parsed.has('steps') && !parsed.has('overload'))) {
    modes.push('ladder');
  }
  for (const mode of ['connections', 'overload', 'smoke', 'split'] as const) {
    if (parsed.has(mode)) {
      modes.push(mode);
    }
  }
  if (modes.length > 1) {
    throw new UsageError(`pick one mode, not ${modes.map((mode) => `--${mode}`).join(' and ')}`);
  }
  const ownsSteps = modes.length === 1 && modes[0] !== 'connections' && modes[0] !== 'split';
  if (ownsSteps && parsed.has('rooms')) {
    throw new UsageError(`--${modes[0]} sets its own steps: drop --rooms`);
  }
  return modes[0] ?? 'load';
}

function stepsOf(mode: Mode, parsed: Parsed, rooms: number, usersPerRoom: number): Step[] {
  switch (mode) {
    case 'ladder':
      return parsed.has('steps') ? parseSteps(parsed.get('steps') as string) : LADDER_STEPS;
    case 'overload':
      return parsed.has('steps') ? parseSteps(parsed.get('steps') as string) : OVERLOAD_STEPS;
    case 'smoke':
      return [SMOKE_STEP];
    case 'load':
    case 'connections':
    case 'split':
      return [{ rooms, usersPerRoom }];
  }
}

/** Parses argv (without node and the script); undefined means --help was asked for. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  const parsed = tokenize(argv);
  if (parsed.get('help') === true) {
    return undefined;
  }
  const mode = modeOf(parsed);
  const url = parsed.get('url') as string | undefined;
  if (url !== undefined && !/^wss?:\/\/[^/]+/.test(url)) {
    throw new UsageError(`--url must be ws://host:port/ or wss://..., not '${url}'`);
  }
  const split = mode === 'split';
  const usersPerRoom = integerAtLeast(
    parsed,
    'users-per-room',
    split ? SPLIT_STEP.usersPerRoom : 10,
    2,
  );
  const rooms = integerAtLeast(parsed, 'rooms', split ? SPLIT_STEP.rooms : 10, 1);
  const connectionsValue = parsed.get('connections');
  const connections = typeof connectionsValue === 'number' ? connectionsValue : DEFAULT_CONNECTIONS;
  if (!Number.isInteger(connections) || connections < 1) {
    throw new UsageError('--connections must be a positive integer');
  }
  const serverEnv = parseServerEnv((parsed.get('server-env') as string[] | undefined) ?? []);
  const splitInstances = split ? splitInstancesOf(parsed, usersPerRoom) : DEFAULT_SPLIT_INSTANCES;
  const redisUrl = (parsed.get('redis-url') as string | undefined) ?? DEFAULT_REDIS_URL;
  if (split) {
    checkSplit(parsed, url, serverEnv, redisUrl);
  } else if (parsed.has('redis-url')) {
    throw new UsageError('--redis-url is for --split');
  }
  const smoke = mode === 'smoke';
  return {
    mode,
    url,
    steps: stepsOf(mode, parsed, rooms, usersPerRoom),
    hz: numberAbove(parsed, 'hz', 33, 0.1),
    durationS: smoke ? 2 : numberAbove(parsed, 'duration', 10, 0.5),
    warmupS: smoke ? 1 : numberAbove(parsed, 'warmup', 3, 0),
    connections,
    usersPerRoom,
    settleS: numberAbove(parsed, 'settle', 5, 0),
    workers: parseWorkers(parsed.get('workers') as string | undefined),
    client: parseClient(parsed.get('client') as string | undefined),
    sampleEvery: integerAtLeast(parsed, 'sample-every', 16, 1),
    serverEnv,
    baseline: !parsed.has('no-baseline'),
    baselineOnly: baselineOnlyOf(parsed, mode),
    cpuProf: parsed.has('cpu-prof'),
    jsonOnly: parsed.has('json-only') || parsed.has('quiet'),
    connectTimeoutS: numberAbove(parsed, 'connect-timeout', 60, 1),
    splitInstances,
    redisUrl,
    tickMs: tickMsOf(parsed),
    busyTenantPercent: busyTenantOf(parsed),
    binary: parsed.has('binary'),
    quantized: quantizedOf(parsed),
    repeat: repeatOf(parsed, mode),
    sideBySide: sideBySideOf(parsed, mode),
  };
}

/** The most rounds --repeat takes: 20 rounds of a 10 s step are already a quarter of an hour. */
export const MAX_REPEAT = 20;

function repeatOf(parsed: Parsed, mode: Mode): number {
  const value = parsed.get('repeat');
  if (value === undefined) {
    return 1;
  }
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_REPEAT) {
    throw new UsageError(`--repeat takes 1 to ${MAX_REPEAT} (rounds), not ${String(value)}`);
  }
  if (mode !== 'load' && mode !== 'ladder' && mode !== 'smoke') {
    throw new UsageError(`--repeat is for one step, --ladder/--steps or --smoke, not --${mode}`);
  }
  return value as number;
}

function sideBySideOf(parsed: Parsed, mode: Mode): boolean {
  if (!parsed.has('side-by-side')) {
    return false;
  }
  if (mode !== 'load' && mode !== 'ladder' && mode !== 'smoke') {
    throw new UsageError(
      `--side-by-side is for load steps (one, --ladder/--steps or --smoke), not --${mode}`,
    );
  }
  for (const option of ['no-baseline', 'baseline-only']) {
    if (parsed.has(option)) {
      throw new UsageError(`--side-by-side runs both servers at once: drop --${option}`);
    }
  }
  return true;
}

function quantizedOf(parsed: Parsed): boolean {
  if (parsed.has('quantized') && !parsed.has('binary')) {
    throw new UsageError('--quantized is a form of the binary channel: add --binary');
  }
  return parsed.has('quantized');
}

function baselineOnlyOf(parsed: Parsed, mode: Mode): boolean {
  if (!parsed.has('baseline-only')) {
    return false;
  }
  for (const option of ['no-baseline', 'url', 'cpu-prof']) {
    if (parsed.has(option)) {
      throw new UsageError(`--baseline-only runs no server of ours: drop --${option}`);
    }
  }
  if (mode === 'split') {
    throw new UsageError('--split compares layouts of our server: drop --baseline-only');
  }
  return true;
}

function busyTenantOf(parsed: Parsed): number {
  const value = parsed.get('busy-tenant');
  if (value === undefined) {
    return 0;
  }
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 90) {
    throw new UsageError(`--busy-tenant takes 0 to 90 (% of one core), not ${String(value)}`);
  }
  return value as number;
}

function tickMsOf(parsed: Parsed): number {
  const value = parsed.get('tick-ms');
  if (value === undefined) {
    return 0;
  }
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 1000) {
    throw new UsageError(`--tick-ms takes 0 to 1000 (ms), not ${String(value)}`);
  }
  return value as number;
}

function splitInstancesOf(parsed: Parsed, usersPerRoom: number): number {
  const value = parsed.get('split');
  const count = typeof value === 'number' ? value : DEFAULT_SPLIT_INSTANCES;
  if (!Number.isInteger(count) || count < 2 || count > MAX_SPLIT_INSTANCES) {
    throw new UsageError(`--split takes 2 to ${MAX_SPLIT_INSTANCES} instances, not ${count}`);
  }
  if (usersPerRoom < count) {
    throw new UsageError(
      `--split ${count} needs at least ${count} users per room, so that every room has members ` +
        `on every instance (--users-per-room is ${usersPerRoom})`,
    );
  }
  return count;
}

/** What --split cannot be combined with: it starts its own servers and owns their Redis env. */
function checkSplit(
  parsed: Parsed,
  url: string | undefined,
  serverEnv: Record<string, string>,
  redisUrl: string,
): void {
  if (url !== undefined) {
    throw new UsageError('--split starts its own servers: drop --url');
  }
  if (parsed.has('cpu-prof')) {
    throw new UsageError('--cpu-prof is not available with --split');
  }
  const owned = SPLIT_OWNED_ENV.filter((key) => key in serverEnv);
  if (owned.length > 0) {
    throw new UsageError(
      `--split sets ${owned.join(' and ')} per layout itself: drop it from --server-env ` +
        '(use --redis-url for the Redis)',
    );
  }
  if (!/^rediss?:\/\/[^/]+/.test(redisUrl)) {
    throw new UsageError(
      `--redis-url must be redis://host:port or rediss://..., not '${redisUrl}'`,
    );
  }
}
