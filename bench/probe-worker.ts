// The overload probe's own thread (see ProbeThread): runs MembershipStateProbe on the commands
// the main thread posts, and posts back what each one gave.
import { parentPort } from 'node:worker_threads';
import { MembershipStateProbe } from './probe.js';
import type { FromProbeWorker, ToProbeWorker } from './probe-thread.js';

const port = parentPort!;
let probe: MembershipStateProbe | undefined;

function reply(message: FromProbeWorker): void {
  port.postMessage(message);
}

async function handle(message: ToProbeWorker): Promise<void> {
  switch (message.type) {
    case 'start':
      probe = await MembershipStateProbe.start(message.url, message.roomId, message.timeoutMs);
      reply({ type: 'started' });
      return;
    case 'begin':
      probe!.beginMeasuring(message.windowMs);
      return;
    case 'end':
      reply({ type: 'ended', summary: await probe!.endMeasuring(message.graceMs) });
      return;
    case 'close':
      probe?.close();
      probe = undefined;
      reply({ type: 'closed' });
      return;
  }
}

port.on('message', (message: ToProbeWorker) => {
  handle(message).catch((error: unknown) => {
    reply({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  });
});
