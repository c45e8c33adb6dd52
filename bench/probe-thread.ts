// The overload probe in a thread of its own. In the main thread its reader timed the bench's own
// work too: at the window's edges the main thread scrapes /metrics (the first fetch loads its
// HTTP client) and takes in the generator workers' counts, and stalls of 60-140 ms there were
// measured as membership and state events that slow. Its own event loop sees only its sockets.
import { Worker } from 'node:worker_threads';
import { withTimeout } from './clock.js';
import type { ProbeSummary } from './probe.js';

export type ToProbeWorker =
  | { type: 'start'; url: string; roomId: string; timeoutMs: number }
  | { type: 'begin'; windowMs: number }
  | { type: 'end'; graceMs: number }
  | { type: 'close' };

export type FromProbeWorker =
  | { type: 'started' }
  | { type: 'ended'; summary: ProbeSummary }
  | { type: 'closed' }
  | { type: 'failed'; message: string };

/** Beyond the probe's own timeouts: how long a reply from its thread may take. */
const REPLY_MARGIN_MS = 5000;

export class ProbeThread {
  private constructor(private readonly worker: Worker) {}

  /** Connects the probe's clients and joins the actor and the reader to the room. */
  static async start(url: string, roomId: string, timeoutMs: number): Promise<ProbeThread> {
    const thread = new ProbeThread(new Worker(new URL('./probe-worker.js', import.meta.url)));
    try {
      await thread.request({ type: 'start', url, roomId, timeoutMs }, timeoutMs * 3);
    } catch (error) {
      await thread.close();
      throw error;
    }
    return thread;
  }

  /** Starts acting; see MembershipStateProbe.beginMeasuring. */
  beginMeasuring(windowMs: number): void {
    this.worker.postMessage({ type: 'begin', windowMs } satisfies ToProbeWorker);
  }

  async endMeasuring(graceMs: number): Promise<ProbeSummary> {
    const reply = await this.request({ type: 'end', graceMs }, graceMs);
    if (reply.type !== 'ended') {
      throw new Error('probe thread: no summary');
    }
    return reply.summary;
  }

  /** Drops the probe's clients and ends the thread. */
  async close(): Promise<void> {
    await this.request({ type: 'close' }, 0).catch(() => undefined);
    await this.worker.terminate();
  }

  /** Posts a command and waits for the thread's reply, `failed` turned into an error. */
  private request(message: ToProbeWorker, timeoutMs: number): Promise<FromProbeWorker> {
    const reply = new Promise<FromProbeWorker>((resolve, reject) => {
      const onMessage = (answer: FromProbeWorker): void => {
        cleanUp();
        if (answer.type === 'failed') {
          reject(new Error(answer.message));
        } else {
          resolve(answer);
        }
      };
      const onError = (error: Error): void => {
        cleanUp();
        reject(error);
      };
      const onExit = (code: number): void => {
        cleanUp();
        reject(new Error(`probe thread exited with code ${code}`));
      };
      const cleanUp = (): void => {
        this.worker.off('message', onMessage);
        this.worker.off('error', onError);
        this.worker.off('exit', onExit);
      };
      this.worker.on('message', onMessage);
      this.worker.once('error', onError);
      this.worker.once('exit', onExit);
    });
    this.worker.postMessage(message);
    return withTimeout(reply, timeoutMs + REPLY_MARGIN_MS, `probe thread '${message.type}'`);
  }
}
