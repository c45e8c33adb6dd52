import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './test-client.js';

/** The built server; `npm test` builds it first (pretest), a direct jest run needs `npm run build`. */
export const MAIN_JS = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/main.js');

/** Fails (never skips) when the build is missing, saying how to make it. */
export function assertBuilt(): void {
  if (!existsSync(MAIN_JS)) {
    throw new Error(
      `${MAIN_JS} is missing: run \`npm run build\` before running jest directly ` +
        '(`npm test` builds it through its pretest script)',
    );
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The log line that says the server is serving, its port captured. */
const LISTENING_LINE = /Listening on http:\/\/[^\s:]+:(\d+)/;

/** `node dist/main.js` as a child process, with its output collected line by line. */
export class ServerProcess {
  readonly stdoutLines: string[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;
  private stdoutRest = '';
  private readonly listeners: Array<() => void> = [];
  private exit?: Exit;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const parts = (this.stdoutRest + chunk).split('\n');
      this.stdoutRest = parts.pop() ?? '';
      this.stdoutLines.push(...parts.filter((line) => line.length > 0));
      this.notify();
    });
    child.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolveExit) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolveExit(this.exit);
      });
    });
  }

  /**
   * Starts the server with only PATH from the parent environment plus `env`, so neither the
   * developer's variables nor jest's NODE_OPTIONS leak into it. `nodeArgs` go before the script
   * (`--import` of a fault to inject, say).
   */
  static start(env: Record<string, string>, nodeArgs: string[] = []): ServerProcess {
    assertBuilt();
    const child = spawn(process.execPath, [...nodeArgs, MAIN_JS], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServerProcess(child);
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** Waits for the "Listening on http://HOST:PORT" log line and returns the port. */
  async port(timeoutMs = 10_000): Promise<number> {
    const line = await this.line(LISTENING_LINE, timeoutMs);
    return Number(LISTENING_LINE.exec(line)?.[1]);
  }

  /** Waits for the first stdout line that matches `pattern`; fails if the process exits first. */
  async line(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const found = await this.waitFor(
      () => this.stdoutLines.find((line) => pattern.test(line)),
      timeoutMs,
      `a log line matching ${pattern}`,
    );
    if (found === undefined) {
      throw new Error(
        `the server exited (${JSON.stringify(this.exit)}) before logging ${pattern}; ` +
          `stdout: ${this.stdoutLines.join('\n')}; stderr: ${this.stderr}`,
      );
    }
    return found;
  }

  waitForExit(timeoutMs: number): Promise<Exit> {
    return withTimeout(this.exited, timeoutMs, 'the server process to exit');
  }

  /** Kills the process if it is still running (cleanup). */
  async stop(): Promise<void> {
    if (!this.hasExited) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Resolves with `probe`'s first defined value, or undefined once the process has exited. */
  private async waitFor<T>(
    probe: () => T | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T | undefined> {
    let listener: (() => void) | undefined;
    const wait = new Promise<T | undefined>((resolveWait) => {
      const check = (): boolean => {
        const value = probe();
        if (value !== undefined || this.hasExited) {
          resolveWait(value);
          return true;
        }
        return false;
      };
      if (!check()) {
        // Removed in the finally below, whether it found the value or timed out.
        listener = () => void check();
        this.listeners.push(listener);
      }
    });
    try {
      return await withTimeout(wait, timeoutMs, what);
    } finally {
      this.removeListener(listener);
    }
  }

  private removeListener(listener: (() => void) | undefined): void {
    const index = listener ? this.listeners.indexOf(listener) : -1;
    if (index >= 0) {
      this.listeners.splice(index, 1);
    }
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      listener();
    }
  }
}
