/**
 * Seeded client frames for the fuzz test (test/fuzz.e2e-spec.ts): a valid frame of a random client
 * action, then mutated the ways a hostile or broken client would (deep nesting, prototype keys,
 * numbers JSON cannot hold, duplicate keys, broken unicode, wrong types, truncation, random text,
 * very wide objects...). The same seed gives the same frames, so a failure reproduces.
 */
import { ClientAction, CloseCode } from '../../src/protocol/protocol.js';

/** Frames are kept under this many UTF-8 bytes, below the default MAX_MESSAGE_BYTES (65536). */
export const FRAME_BUDGET_BYTES = 60_000;
const DEFAULT_MAX_MESSAGE_BYTES = 65_536;
/** The ws library's own close for a text frame that is not UTF-8 (not one of our CloseCodes). */
export const INVALID_UTF8_CLOSE = 1007;

/** mulberry32: tiny, fast and good enough to pick mutations; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  float(): number {
    return this.next();
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** An integer in [min, max], small values as likely as large ones on a log scale. */
  logInt(min: number, max: number): number {
    const low = Math.log(min);
    return Math.min(max, Math.floor(Math.exp(low + this.next() * (Math.log(max + 1) - low))));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(entries: ReadonlyArray<readonly [number, T]>): T {
    const total = entries.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [weight, value] of entries) {
      roll -= weight;
      if (roll < 0) {
        return value;
      }
    }
    return entries[entries.length - 1][1];
  }
}

/** What a fuzz client knows: its own id, the other fuzz users and the fuzz rooms. */
export interface FuzzContext {
  selfId: string;
  peerIds: readonly string[];
  roomIds: readonly string[];
}

export interface FuzzFrame {
  /** The template and the mutations that made it, e.g. `join_room+wrong-type+deep-array`. */
  kind: string;
  /** The mutations alone (`[]` for a valid frame); a whole-frame kind such as `binary` is one. */
  mutations: string[];
  /** Text frames are strings; a Buffer is sent as is (binary, or text that is not UTF-8). */
  data: string | Buffer;
  binary?: boolean;
  /** The close the frame must cause: 1009 (too big), 1003 (binary), 1007 (not UTF-8). */
  expectClose?: number;
  /**
   * The requestId whose reply the README's reply rule promises (a request other than broadcast
   * and send_message whose parsed JSON carries one of our `fz-N` ids).
   */
  expectReplyTo?: string;
}

const UNKNOWN_ACTIONS = [
  'PING',
  ' ping',
  'ping ',
  'join-room',
  'joinRoom',
  '',
  '$rejected_frame',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'then',
  'handleConnection',
  'error',
  'connected',
  '\u0000ping',
  'ping\u0000',
  'p\u0131ng',
  '\ud800',
  '🎉',
];

const PROTO_KEYS = [
  '"__proto__"',
  '"\\u005f_proto__"',
  '"\\u005f\\u005fproto\\u005f\\u005f"',
  '"__pr\\u006fto__"',
  '"\\u005F_proto__"',
  '"constructor"',
  '"construct\\u006fr"',
  '"prototype"',
  '"protot\\u0079pe"',
];

const RAW_NUMBERS = [
  '1e400',
  '-1e400',
  '1e308',
  '-1e308',
  '1.7976931348623157e308',
  '5e-324',
  '1e-400',
  '-0',
  '-0.0',
  '9007199254740993',
  '-9007199254740993',
  '123456789012345678901234567890123456789012345678901234567890',
  '0.1e1',
  '1E2',
  '1e+2',
  // Not JSON at all: the whole frame becomes INVALID_JSON.
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '01',
  '.5',
  '+1',
  '1.',
  'undefined',
];

const WEIRD_STRINGS = [
  '\ud800',
  '\udfff',
  '\udfff\ud800',
  '\u0000',
  'a\u0000b',
  '🎉🧪👩‍👩‍👧‍👦',
  '\u202e\u202d',
  '\ufeff',
  '\uffff\ufffe',
  'ｆｕｌｌｗｉｄｔｈ',
  'e\u0301\u0301\u0301\u0301',
  '\r\n\t\b\f',
  '"',
  '\\',
  '</script>',
  '%00',
  '../../etc/passwd',
  'room id',
  'x'.repeat(65),
  'x'.repeat(129),
];

/** JSON escapes written as raw text, so the parser sees them spelled this way. */
const RAW_STRINGS = [
  '"\\u0041"',
  '"\\""',
  '"\\\\"',
  '"\\ud800"',
  '"\\udc00\\ud800"',
  '"\\u0000"',
  '"\\ud83c\\udf89"',
  '"\\/"',
  '"\\u005f_proto__"',
  // Not JSON: a bad escape, a raw control character, a raw line break.
  '"\\x41"',
  '"\\u12"',
  '"\u0001"',
  '"a\nb"',
];

const WRONG_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 53,
  '',
  ' ',
  'x',
  '0',
  'null',
  [],
  [1, 2],
  ['a'],
  {},
  { a: 1 },
  { toString: 'x' },
];

/** Keys a sloppy server might trust. */
const EXTRA_FIELDS: Array<[string, unknown]> = [
  ['role', 'host'],
  ['isHost', true],
  ['userId', 'someone-else'],
  ['senderId', 'someone-else'],
  ['connected', false],
  ['version', 1e9],
  ['event', 'room_deleted'],
];

const RAW_PREFIX = '~~raw:';

/** A frame being built: its value, plus raw JSON text substituted for placeholder strings. */
interface Draft {
  value: unknown;
  raws: string[];
  tags: string[];
}

type Path = Array<string | number>;

/**
 * Makes frames. `next()` draws one from the seeded stream; its requestIds are `fz-<n>` and
 * unique per generator (give each fuzz client its own `idPrefix`).
 */
export class FrameGenerator {
  private readonly rng: Rng;
  private counter = 0;

  constructor(
    seed: number,
    private readonly context: FuzzContext,
    private readonly idPrefix = 'fz',
  ) {
    this.rng = new Rng(seed);
  }

  next(): FuzzFrame {
    const rng = this.rng;
    const whole = rng.weighted<(() => FuzzFrame) | undefined>([
      [1000, undefined],
      [40, () => this.randomText()],
      [20, () => this.emptyish()],
      [5, () => this.oversized()],
      [5, () => this.binary()],
      [5, () => this.invalidUtf8()],
    ]);
    if (whole) {
      return whole();
    }
    for (let attempt = 0; ; attempt++) {
      const frame = this.mutated();
      if (Buffer.byteLength(frame.data) <= FRAME_BUDGET_BYTES || attempt >= 5) {
        return Buffer.byteLength(frame.data) <= FRAME_BUDGET_BYTES
          ? frame
          : {
              ...frame,
              kind: `${frame.kind}+oversized`,
              mutations: [...frame.mutations, 'oversized'],
              expectClose: CloseCode.MessageTooBig,
            };
      }
    }
  }

  /** A valid frame of `action` for this client's context (or an unknown action's frame). */
  valid(action: ClientAction | 'unknown'): Record<string, unknown> {
    const rng = this.rng;
    const { selfId, peerIds, roomIds } = this.context;
    const requestId = this.requestId();
    const roomId = rng.chance(0.9) ? rng.pick(roomIds) : `fz-new-${rng.int(0, 50)}`;
    const peer = rng.chance(0.85) ? rng.pick(peerIds) : `fz-nobody-${rng.int(0, 9)}`;
    switch (action) {
      case ClientAction.CreateRoom:
        return {
          action,
          requestId,
          ...(rng.chance(0.8)
            ? { roomId: rng.chance(0.5) ? roomId : `fz-made-${rng.int(0, 99)}` }
            : {}),
          config: {
            name: `Fuzz ${rng.int(0, 999)}`,
            maxUsers: rng.int(1, 50),
            ...(rng.chance(0.3) ? { password: 'pw' } : {}),
            persistent: rng.chance(0.2),
            defaultRole: rng.pick(['editor', 'viewer']),
          },
        };
      case ClientAction.JoinRoom:
        return {
          action,
          requestId,
          roomId,
          ...(rng.chance(0.2) ? { password: 'pw' } : {}),
          userInfo: {
            userId: selfId,
            name: `Fuzzer ${selfId}`,
            role: rng.pick(['host', 'editor', 'viewer']),
            avatar: {
              type: 'simple',
              color: rng.pick(['#3498db', '#fff', '#12345678']),
              displayName: selfId,
              modelUrl: 'https://example.com/a.glb',
            },
          },
        };
      case ClientAction.LeaveRoom:
      case ClientAction.GetState:
      case ClientAction.DeleteRoom:
        return { action, requestId, roomId };
      case ClientAction.Broadcast:
        return { action, requestId, roomId, message: this.appMessage() };
      case ClientAction.SendMessage:
        return { action, requestId, targetUserId: peer, message: this.appMessage() };
      case ClientAction.Ping:
        return { action, requestId };
      case ClientAction.Hello:
        // Never binary_poses(_quantized): a fuzzed binary frame must keep meaning close 1003 here.
        return { action, requestId, capabilities: rng.chance(0.5) ? [] : ['fz-unknown', 'cursor'] };
      case ClientAction.UpdateState:
        return rng.chance(0.5)
          ? {
              action,
              requestId,
              roomId,
              baseVersion: rng.int(0, 20),
              patch: {
                sceneUrl: rng.chance(0.8) ? 'https://example.com/scene.gltf' : null,
                sceneLoaded: rng.chance(0.5),
                treeViewState: { expanded: ['n1', 'n2'], selected: 'n2' },
                sessionSettings: { grid: true, units: 'm' },
              },
            }
          : {
              action,
              requestId,
              roomId,
              ops: Array.from({ length: rng.int(1, 4) }, () => ({
                op: rng.pick(['add', 'update', 'remove']),
                collection: rng.pick(['annotations', 'focusPoints']),
                id: `item-${rng.int(0, 9)}`,
                item: { text: 'Look here', position: [1, 2, 3] },
              })),
            };
      case ClientAction.SetRole:
        return {
          action,
          requestId,
          roomId,
          targetUserId: peer,
          role: rng.pick(['host', 'editor', 'viewer']),
        };
      case ClientAction.KickUser:
        return { action, requestId, roomId, targetUserId: peer };
      case ClientAction.RefreshToken:
        return { action, requestId, token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' };
      case ClientAction.Resume:
        return {
          action,
          requestId,
          token: rng.chance(0.5) ? 'x'.repeat(rng.int(1, 64)) : undefined,
          rooms: [{ roomId, epoch: 'e'.repeat(rng.int(1, 16)), lastSeq: rng.int(0, 1000) }],
        };
      case 'unknown':
        return { action: rng.pick(UNKNOWN_ACTIONS), requestId, roomId };
    }
  }

  private requestId(): string {
    this.counter += 1;
    return `${this.idPrefix}-${this.counter}`;
  }

  private appMessage(): Record<string, unknown> {
    const rng = this.rng;
    if (rng.chance(0.6)) {
      return {
        type: 'pose_update',
        senderId: this.context.selfId,
        timestamp: 1699564800000 + rng.int(0, 1e6),
        data: {
          position: [rng.float() * 10, 1.7, rng.float() * -10],
          rotation: [0, rng.float(), 0, 1],
        },
      };
    }
    return {
      type: rng.pick(['chat_message', 'cursor', 'laser_pointer', 'x']),
      ...(rng.chance(0.5) ? { senderId: this.context.selfId } : {}),
      timestamp: 1699564800000,
      data: { text: 'Hello!', nested: { list: [1, 'two', { three: 3 }] } },
    };
  }

  private mutated(): FuzzFrame {
    const rng = this.rng;
    const action = rng.weighted<ClientAction | 'unknown'>([
      [12, ClientAction.Broadcast],
      [8, ClientAction.JoinRoom],
      [6, ClientAction.UpdateState],
      [5, ClientAction.SendMessage],
      [4, ClientAction.Ping],
      [4, ClientAction.GetState],
      [3, ClientAction.CreateRoom],
      [3, ClientAction.LeaveRoom],
      [3, ClientAction.SetRole],
      [2, ClientAction.KickUser],
      [1, ClientAction.DeleteRoom],
      [2, ClientAction.RefreshToken],
      [2, ClientAction.Hello],
      [3, 'unknown'],
    ]);
    const draft: Draft = { value: this.valid(action), raws: [], tags: [action] };
    const count = rng.weighted([
      [15, 0],
      [55, 1],
      [20, 2],
      [10, 3],
    ]);
    // At most one mutation that spends the size budget, and it goes last.
    let big: ((draft: Draft) => void) | undefined;
    for (let i = 0; i < count; i++) {
      const mutation = rng.weighted<[string, (draft: Draft) => void, boolean]>([
        [14, ['wrong-type', (d) => this.wrongType(d), false]],
        [6, ['drop-field', (d) => this.dropField(d), false]],
        [4, ['extra-field', (d) => this.extraField(d), false]],
        [8, ['proto-key', (d) => this.protoKey(d), false]],
        [6, ['raw-number', (d) => this.rawNumber(d), false]],
        [6, ['unicode', (d) => this.unicode(d), false]],
        [5, ['array-for-object', (d) => this.arrayForObject(d), false]],
        [3, ['unknown-action', (d) => this.unknownAction(d), false]],
        [12, ['deep', (d) => this.deep(d), true]],
        [4, ['long-string', (d) => this.longString(d), true]],
        [4, ['wide-object', (d) => this.wideObject(d), true]],
      ]);
      const [name, apply, spendsBudget] = mutation;
      if (spendsBudget) {
        big = apply;
      } else {
        draft.tags.push(name);
        apply(draft);
      }
    }
    if (big) {
      big(draft);
    }
    let text = render(draft);
    const textMutation = rng.weighted<[string, (text: string) => string] | undefined>([
      [80, undefined],
      [6, ['truncated', (t) => t.slice(0, rng.int(0, Math.max(0, t.length - 1)))]],
      [6, ['duplicate-key', (t) => this.duplicateKey(t)]],
      [3, ['garbage', (t) => this.garbage(t)]],
      [2, ['padding', (t) => this.padding(t)]],
      [2, ['two-frames', (t) => `${t}${t}`]],
      [1, ['bom', (t) => `\ufeff${t}`]],
    ]);
    if (textMutation) {
      draft.tags.push(textMutation[0]);
      text = textMutation[1](text);
    }
    return {
      kind: draft.tags.join('+'),
      mutations: draft.tags.slice(1),
      data: text,
      expectReplyTo: expectedReply(text),
    };
  }

  // --- structural mutations ---

  private wrongType(draft: Draft): void {
    const path = this.pickPath(draft.value, () => true);
    const value = this.rng.pick(WRONG_VALUES);
    draft.value = setAt(draft.value, path, structuredClone(value));
  }

  private dropField(draft: Draft): void {
    const path = this.pickPath(draft.value, (p) => p.length > 0);
    if (path.length > 0) {
      draft.value = deleteAt(draft.value, path);
    }
  }

  private extraField(draft: Draft): void {
    const path = this.pickObjectPath(draft.value);
    const [key, value] = this.rng.pick(EXTRA_FIELDS);
    draft.value = setAt(draft.value, [...path, key], value);
  }

  private protoKey(draft: Draft): void {
    const rng = this.rng;
    const path = this.pickObjectPath(draft.value);
    const key = this.raw(draft, rng.pick(PROTO_KEYS));
    const payload = rng.pick<unknown>([
      { polluted: true },
      { isAdmin: true, role: 'host' },
      { prototype: { polluted: true } },
      'x',
      null,
      [1],
    ]);
    draft.value = setAt(draft.value, [...path, key], payload);
  }

  private rawNumber(draft: Draft): void {
    const path = this.pickPath(draft.value, (p) => p.length > 0);
    draft.value = setAt(draft.value, path, this.raw(draft, this.rng.pick(RAW_NUMBERS)));
  }

  private unicode(draft: Draft): void {
    const rng = this.rng;
    const path = this.pickPath(draft.value, (p) => p.length > 0);
    const value = rng.chance(0.5)
      ? `${rng.chance(0.5) ? 'fz' : ''}${rng.pick(WEIRD_STRINGS)}`
      : this.raw(draft, rng.pick(RAW_STRINGS));
    if (rng.chance(0.2)) {
      // As a key rather than a value.
      const parent = this.pickObjectPath(draft.value);
      draft.value = setAt(draft.value, [...parent, rng.pick(WEIRD_STRINGS)], 1);
    } else {
      draft.value = setAt(draft.value, path, value);
    }
  }

  private arrayForObject(draft: Draft): void {
    const rng = this.rng;
    if (rng.chance(0.2)) {
      draft.value = rng.chance(0.5) ? [draft.value] : valuesOf(draft.value);
      return;
    }
    const path = this.pickObjectPath(draft.value);
    const target = getAt(draft.value, path);
    const replacement = rng.chance(0.5) ? valuesOf(target) : [target];
    draft.value = setAt(draft.value, path, replacement);
  }

  private unknownAction(draft: Draft): void {
    const rng = this.rng;
    const action = rng.chance(0.8) ? rng.pick(UNKNOWN_ACTIONS) : 'a'.repeat(rng.logInt(1, 10_000));
    if (isObject(draft.value)) {
      draft.value = { ...draft.value, action };
    }
  }

  /** Nested arrays or objects, 10 to 40000 levels (as many as fit), maybe with an escape inside. */
  private deep(draft: Draft): void {
    const rng = this.rng;
    const style = rng.pick(['array', 'object', 'mixed'] as const);
    const inner = rng.pick(['1', 'null', '"\\u0041"', '"\\""', '"\\\\"', '"x"', '{}', '[]']);
    const open = { array: '[', object: '{"a":', mixed: '[{"k":' }[style];
    const close = { array: ']', object: '}', mixed: '}]' }[style];
    const path = this.pickPath(draft.value, (p) => p.length > 0);
    const room = FRAME_BUDGET_BYTES - Buffer.byteLength(render(draft)) - inner.length - 32;
    const fits = Math.max(1, Math.floor(room / (open.length + close.length)));
    const depth = Math.min(fits, rng.logInt(10, 40_000));
    draft.tags.push(`deep-${style}`);
    draft.value = setAt(
      draft.value,
      path.length > 0 ? path : ['x'],
      this.raw(draft, open.repeat(depth) + inner + close.repeat(depth)),
    );
  }

  private longString(draft: Draft): void {
    const rng = this.rng;
    const path = this.pickPath(draft.value, (p) => p.length > 0);
    const room = FRAME_BUDGET_BYTES - Buffer.byteLength(render(draft)) - 16;
    const unit = rng.pick(['x', 'é', '🎉', '\\"', '\\u0041']);
    const units = Math.max(0, Math.min(rng.logInt(100, 60_000), Math.floor(room / 6)));
    draft.tags.push('long-string');
    const text = unit.startsWith('\\')
      ? `"${unit.repeat(units)}"`
      : JSON.stringify(unit.repeat(units));
    draft.value = setAt(draft.value, path.length > 0 ? path : ['x'], this.raw(draft, text));
  }

  private wideObject(draft: Draft): void {
    const rng = this.rng;
    const path = this.pickObjectPath(draft.value);
    const room = FRAME_BUDGET_BYTES - Buffer.byteLength(render(draft)) - 16;
    const keys = Math.max(0, Math.min(rng.logInt(100, 8000), Math.floor(room / 14)));
    const wide: Record<string, unknown> = {};
    for (let i = 0; i < keys; i++) {
      wide[`k${i}`] = i;
    }
    draft.tags.push('wide-object');
    draft.value = rng.chance(0.3)
      ? setAt(draft.value, [...path, 'wide'], rng.chance(0.5) ? wide : Object.keys(wide))
      : setAt(draft.value, path, { ...(getAt(draft.value, path) as object), ...wide });
  }

  // --- text mutations ---

  private duplicateKey(text: string): string {
    const rng = this.rng;
    if (!text.startsWith('{')) {
      return text;
    }
    const key = rng.pick(['action', 'requestId', 'roomId', 'targetUserId', 'message', 'role']);
    const value = rng.pick([
      '"ping"',
      '"join_room"',
      '"delete_room"',
      '"kick_user"',
      '"fz-dup"',
      JSON.stringify(rng.pick(this.context.roomIds)),
      '{"type":"pose_update"}',
      '"host"',
      'null',
    ]);
    const pair = `"${key}":${value}`;
    if (text === '{}') {
      return `{${pair}}`;
    }
    return rng.chance(0.5) ? `{${pair},${text.slice(1)}` : `${text.slice(0, -1)},${pair}}`;
  }

  private garbage(text: string): string {
    const at = this.rng.int(0, text.length);
    return text.slice(0, at) + this.randomChars(this.rng.int(1, 8)) + text.slice(at);
  }

  private padding(text: string): string {
    const room = FRAME_BUDGET_BYTES - Buffer.byteLength(text);
    const pad = this.rng
      .pick([' ', '\n', '\t', '\r\n'])
      .repeat(Math.max(0, this.rng.int(0, room / 2)));
    return this.rng.chance(0.5) ? `${pad}${text}${pad}` : text.replace(':', `:${pad}`);
  }

  // --- whole frames ---

  private randomText(): FuzzFrame {
    const rng = this.rng;
    const style = rng.pick(['chars', 'json-soup', 'ascii'] as const);
    const length = rng.logInt(1, 4000);
    let data: string;
    if (style === 'chars') {
      data = this.randomChars(length);
    } else if (style === 'json-soup') {
      const tokens = [
        '{',
        '}',
        '[',
        ']',
        ':',
        ',',
        '"',
        '"a"',
        '1',
        'null',
        '\\',
        '"action"',
        '"ping"',
      ];
      data = Array.from({ length }, () => rng.pick(tokens)).join('');
    } else {
      data = Array.from({ length }, () => String.fromCharCode(rng.int(32, 126))).join('');
    }
    return { kind: `random-${style}`, mutations: [`random-${style}`], data };
  }

  private emptyish(): FuzzFrame {
    const data = this.rng.pick([
      '',
      ' ',
      '\n',
      'null',
      '0',
      'true',
      '"ping"',
      '[]',
      '{}',
      '[{"action":"ping"}]',
      '{"action":null}',
      '{"action":{}}',
      '{"action":["ping"]}',
      '{"action":"ping"',
      '{"action":"ping"}}',
      "{'action':'ping'}",
      '{action:"ping"}',
      '{"action":"ping",}',
      '{"action":"ping"} // comment',
      '\u0000',
    ]);
    return { kind: 'emptyish', mutations: ['emptyish'], data, expectReplyTo: expectedReply(data) };
  }

  private oversized(): FuzzFrame {
    const size = this.rng.int(DEFAULT_MAX_MESSAGE_BYTES + 1, DEFAULT_MAX_MESSAGE_BYTES + 20_000);
    const head = `{"action":"ping","requestId":"${this.requestId()}","pad":"`;
    return {
      kind: 'oversized',
      mutations: ['oversized'],
      data: `${head}${'x'.repeat(size - head.length - 2)}"}`,
      expectClose: CloseCode.MessageTooBig,
    };
  }

  private binary(): FuzzFrame {
    const bytes = Buffer.from(
      Array.from({ length: this.rng.int(1, 256) }, () => this.rng.int(0, 255)),
    );
    return {
      kind: 'binary',
      mutations: ['binary'],
      data: bytes,
      binary: true,
      expectClose: CloseCode.UnsupportedData,
    };
  }

  private invalidUtf8(): FuzzFrame {
    const head = Buffer.from(`{"action":"ping","requestId":"${this.requestId()}","x":"`);
    const bad = Buffer.from(
      this.rng.pick([[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]),
    );
    return {
      kind: 'invalid-utf8',
      mutations: ['invalid-utf8'],
      data: Buffer.concat([head, bad, Buffer.from('"}')]),
      expectClose: INVALID_UTF8_CLOSE,
    };
  }

  // --- helpers ---

  private randomChars(length: number): string {
    const rng = this.rng;
    let text = '';
    for (let i = 0; i < length; i++) {
      text += String.fromCharCode(
        rng.chance(0.7)
          ? rng.int(0, 255)
          : rng.chance(0.5)
            ? rng.int(0xd800, 0xdfff)
            : rng.int(256, 0xffff),
      );
    }
    return text;
  }

  /** A placeholder string that `render` replaces with `text` as raw JSON. */
  private raw(draft: Draft, text: string): string {
    draft.raws.push(text);
    return `${RAW_PREFIX}${draft.raws.length - 1}~~`;
  }

  private pickPath(value: unknown, accept: (path: Path) => boolean): Path {
    const paths = allPaths(value).filter(accept);
    return paths.length > 0 ? this.rng.pick(paths) : [];
  }

  private pickObjectPath(value: unknown): Path {
    return this.pickPath(value, (path) => isObject(getAt(value, path)));
  }
}

/** The exact frame of issue 8: 30,000 nested arrays around a JSON escape, about 60 KB. */
export function issue8CrashFrame(depth = 30_000): string {
  return `{"action":"ping","x":${'['.repeat(depth)}"\\u0041"${']'.repeat(depth)}}`;
}

/** A ping nested `depth` objects deep inside `x`, a `\"` escape at the bottom. */
export function deepObjectFrame(depth: number, requestId?: string): string {
  const id = requestId !== undefined ? `"requestId":${JSON.stringify(requestId)},` : '';
  return `{"action":"ping",${id}"x":${'{"a":'.repeat(depth)}"\\""${'}'.repeat(depth)}}`;
}

/** The requestId a reply must carry, by the README's reply rule; undefined when none is due. */
export function expectedReply(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(parsed)) {
    return undefined;
  }
  const { action, requestId } = parsed;
  if (typeof requestId !== 'string' || !/^[a-z]+-\d+$/.test(requestId)) {
    return undefined;
  }
  if (action === ClientAction.Broadcast || action === ClientAction.SendMessage) {
    return undefined;
  }
  return requestId;
}

function render(draft: Draft): string {
  let text = JSON.stringify(draft.value) ?? 'null';
  draft.raws.forEach((raw, index) => {
    text = text.split(`"${RAW_PREFIX}${index}~~"`).join(raw);
  });
  return text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every path into objects and arrays, the root (`[]`) included. */
function allPaths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) {
    value.forEach((item, index) => allPaths(item, [...prefix, index], out));
  } else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      allPaths(item, [...prefix, key], out);
    }
  }
  return out;
}

function getAt(value: unknown, path: Path): unknown {
  let current = value;
  for (const key of path) {
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** A copy of `value` with `path` set; the root path replaces the whole value. */
function setAt(value: unknown, path: Path, replacement: unknown): unknown {
  if (path.length === 0) {
    return replacement;
  }
  const [key, ...rest] = path;
  const container = (
    Array.isArray(value) ? [...(value as unknown[])] : isObject(value) ? { ...value } : {}
  ) as Record<string | number, unknown>;
  // defineProperty: a key named `__proto__` (from the WEIRD keys) must stay an own property.
  Object.defineProperty(container, key, {
    value: setAt(container[key], rest, replacement),
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return container;
}

function deleteAt(value: unknown, path: Path): unknown {
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1];
  const parent = getAt(value, parentPath);
  if (Array.isArray(parent)) {
    return setAt(
      value,
      parentPath,
      parent.filter((_item, index) => index !== key),
    );
  }
  const copy = { ...(parent as Record<string, unknown>) };
  delete copy[key as string];
  return setAt(value, parentPath, copy);
}

/** An object's values; anything else (an earlier mutation may have left null) in an array. */
function valuesOf(value: unknown): unknown[] {
  return value !== null && typeof value === 'object' ? Object.values(value) : [value];
}
