import { failedStartLine } from './failed-start.js';

describe('failedStartLine', () => {
  it('keeps the text lines as they were', () => {
    expect(failedStartLine(new Error('PORT must be a number'), true, undefined)).toBe(
      'PORT must be a number',
    );
    expect(failedStartLine(new Error('boom'), false, 'text')).toMatch(
      /^Failed to start: Error: boom\n/,
    );
  });

  it('writes one CRITICAL JSON line with LOG_FORMAT=json, a stack only for an unexpected error', () => {
    const config = JSON.parse(failedStartLine(new Error('PORT must be a number'), true, 'json'));
    expect(config).toMatchObject({ severity: 'CRITICAL', message: 'PORT must be a number' });
    expect(config.stack_trace).toBeUndefined();
    const line = failedStartLine(new Error('boom'), false, 'json');
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toMatchObject({
      severity: 'CRITICAL',
      message: 'Failed to start: boom',
      stack_trace: expect.stringContaining('Error: boom'),
    });
  });
});
