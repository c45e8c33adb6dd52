import { JsonLogger } from './json-logger.js';
import { logFields, MAX_FIELD_CHARS } from './log-fields.js';

function setup(
  levels: ConstructorParameters<typeof JsonLogger>[0]['logLevels'] = [
    'fatal',
    'error',
    'warn',
    'log',
    'debug',
    'verbose',
  ],
) {
  const out: string[] = [];
  const err: string[] = [];
  const logger = new JsonLogger({
    logLevels: levels,
    instanceId: 'host-1-abcd',
    stdout: { write: (line: string) => out.push(line) },
    stderr: { write: (line: string) => err.push(line) },
  });
  const parse = (lines: string[]) =>
    lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, out, err, parse };
}

describe('JsonLogger', () => {
  it('maps Nest levels to Cloud Logging severities, ERROR and CRITICAL on stderr', () => {
    const { logger, out, err, parse } = setup();
    logger.verbose('v', 'Ctx');
    logger.debug('d', 'Ctx');
    logger.log('l', 'Ctx');
    logger.warn('w', 'Ctx');
    logger.error('e', undefined, 'Ctx');
    logger.fatal('f', 'Ctx');
    expect(parse(out).map((line) => line.severity)).toEqual(['DEBUG', 'DEBUG', 'INFO', 'WARNING']);
    expect(parse(err).map((line) => line.severity)).toEqual(['ERROR', 'CRITICAL']);
    for (const line of [...out, ...err]) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
    }
  });

  it('writes message, ISO time, context and instanceId on every line', () => {
    const { logger, out, parse } = setup();
    logger.log('hello', 'Bootstrap');
    const [line] = parse(out);
    expect(line).toMatchObject({
      message: 'hello',
      context: 'Bootstrap',
      instanceId: 'host-1-abcd',
    });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
  });

  it('leaves out the levels below LOG_LEVEL', () => {
    const { logger, out } = setup(['fatal', 'error', 'warn', 'log']);
    logger.debug('hidden', 'Ctx');
    expect(out).toEqual([]);
  });

  it('puts fields at the top level and cuts client values to a bounded length', () => {
    const { logger, out, parse } = setup();
    const long = 'r'.repeat(5000);
    logger.debug(
      'Request refused',
      logFields({
        roomId: long,
        userId: 'bob',
        requestId: 7,
        code: 'FORBIDDEN',
        action: 'kick_user',
      }),
      'Filter',
    );
    const [line] = parse(out);
    expect(line).toMatchObject({
      userId: 'bob',
      requestId: 7,
      code: 'FORBIDDEN',
      action: 'kick_user',
      context: 'Filter',
    });
    expect((line.roomId as string).length).toBeLessThanOrEqual(MAX_FIELD_CHARS + 1);
    expect(line.stack_trace).toBeUndefined();
  });

  it("gives an unexpected error its stack_trace, whether an Error or Nest's stack string", () => {
    const { logger, err, parse } = setup();
    const error = new Error('boom');
    logger.error(error, 'Ctx');
    logger.error('failed', logFields({ userId: 'a' }), error.stack, 'Ctx');
    const [first, second] = parse(err);
    expect(first).toMatchObject({ message: 'boom', stack_trace: error.stack, context: 'Ctx' });
    expect(second).toMatchObject({ message: 'failed', stack_trace: error.stack, userId: 'a' });
  });

  it('writes no stack below ERROR', () => {
    const { logger, out, parse } = setup();
    logger.warn(new Error('expected'), 'Ctx');
    expect(parse(out)[0].stack_trace).toBeUndefined();
  });

  it('writes an object message as text, on one line', () => {
    const { logger, out, parse } = setup();
    logger.log({ a: { b: 1 } }, 'Ctx');
    expect(parse(out)[0].message).toBe('{ a: { b: 1 } }');
  });
});
