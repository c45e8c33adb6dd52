import { setFlagsFromString } from 'node:v8';

/**
 * Imported first by main.ts, before anything else runs. V8's allocation-site pretenuring sees
 * many of `ws`'s per-frame objects outlive a young-generation collection while a thousand sockets
 * join, decides they are long-lived and from then on allocates them straight in the old
 * generation, where every frame's garbage waits for a full collection: measured at 20 rooms x 50
 * users (binary poses, 33 ms ticks), the heap grew by about 10 MB/s between full collections,
 * each young collection took 5-14 ms instead of 1-2 ms, and peak RSS was 245-273 MB instead of
 * about 145 MB (docs/performance.md). Without pretenuring, those objects die young as they
 * should. Set at run time so that it holds however the process is started (npm start, node
 * dist/main.js, the container).
 */
setFlagsFromString('--no-allocation-site-pretenuring');
