// `npm run size` (root: `npm run client:build`): the SDK's built JavaScript must stay under the
// 15 KB gzipped budget of issue 11. An application's bundler ships the SDK as part of one file, so
// the check gzips every built file concatenated, as built: without comments (tsconfig.build.json),
// nothing minified, so a real minified bundle comes out smaller. The sum of the files gzipped one by one is printed too, for loading
// them unbundled as separate ES modules.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_BYTES = 15 * 1024;
const DIST = new URL('../dist/', import.meta.url).pathname;

function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      return jsFiles(path);
    }
    return entry.name.endsWith('.js') ? [path] : [];
  });
}

const files = jsFiles(DIST);
if (files.length === 0) {
  console.error(`No built files under ${DIST}: run the client build first`);
  process.exit(1);
}
const sources = files.map((file) => readFileSync(file));
const gzipped = (buffer) => gzipSync(buffer, { level: 9 }).length;
const total = gzipped(Buffer.concat(sources));
const oneByOne = sources.reduce((sum, source) => sum + gzipped(source), 0);
const verdict = total <= BUDGET_BYTES ? 'within' : 'OVER';
console.log(
  `client SDK: ${files.length} files, ${total} bytes gzipped together (${verdict} the budget of ` +
    `${BUDGET_BYTES}), ${oneByOne} bytes gzipped one by one`,
);
process.exit(total <= BUDGET_BYTES ? 0 : 1);
