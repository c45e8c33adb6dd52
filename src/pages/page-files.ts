import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file the pages controller may send, read into memory at boot. */
export interface PageFile {
  body: Buffer;
  contentType: string;
}

// The repository root: dist/pages/ after `npm run build`, src/pages/ under ts-jest.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const PUBLIC_DIR = join(ROOT, 'public');
export const SDK_DIST_DIR = join(ROOT, 'client', 'dist');

// Bounds, so a stray large file in client/dist cannot make the server hold it in memory.
const MAX_FILE_BYTES = 256 * 1024;
const MAX_SDK_FILES = 64;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** URL path -> file in public/, for each page. A request for anything else is a 404. */
export const DEMO_FILES: Record<string, string> = {
  '/demo': 'demo.html',
  '/pages/demo.js': 'demo.js',
  '/pages/demo-view.js': 'demo-view.js',
};
export const ADMIN_FILES: Record<string, string> = {
  '/admin': 'admin.html',
  '/pages/admin.js': 'admin.js',
};
export const SHARED_FILES: Record<string, string> = {
  '/pages/pages.css': 'pages.css',
  // Named by both pages, so browsers do not ask for a /favicon.ico that is not there.
  '/pages/icon.svg': 'icon.svg',
};

/** Reads the listed public/ files; throws when one is missing, since a page would half work. */
export function readPublicFiles(files: Record<string, string>): Map<string, PageFile> {
  const served = new Map<string, PageFile>();
  for (const [urlPath, name] of Object.entries(files)) {
    served.set(urlPath, readBounded(join(PUBLIC_DIR, name)));
  }
  return served;
}

/**
 * The SDK's built ES modules (client/dist, `npm run client:build`) as `/sdk/<path>.js`, listed
 * once at boot. The browser follows their relative imports (client/src -> src/protocol), so the
 * tree keeps its shape. Missing dist: an empty list, and the caller warns.
 */
export function readSdkFiles(dir = SDK_DIST_DIR): Map<string, PageFile> {
  const served = new Map<string, PageFile>();
  for (const file of listJs(dir)) {
    if (served.size >= MAX_SDK_FILES) {
      throw new Error(`${dir} has more than ${MAX_SDK_FILES} .js files`);
    }
    const urlPath = `/sdk/${relative(dir, file).split(sep).join('/')}`;
    served.set(urlPath, readBounded(file));
  }
  return served;
}

function listJs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const path = join(dir, name);
    const stats = statSync(path);
    if (stats.isDirectory()) {
      return listJs(path);
    }
    return stats.isFile() && extname(name) === '.js' ? [path] : [];
  });
}

function readBounded(path: string): PageFile {
  const contentType = CONTENT_TYPES[extname(path)];
  if (!contentType) {
    throw new Error(`No content type for ${path}`);
  }
  if (statSync(path).size > MAX_FILE_BYTES) {
    throw new Error(`${path} is larger than ${MAX_FILE_BYTES} bytes`);
  }
  return { body: readFileSync(path), contentType };
}
