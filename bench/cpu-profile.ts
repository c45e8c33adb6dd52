import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface ProfileEntry {
  /** Share of all samples spent in the function itself, in %. */
  selfPercent: number;
  functionName: string;
  /** basename(url):line (1-based), or empty for V8's pseudo-frames like (garbage collector). */
  location: string;
}

export interface CpuProfileSummary {
  file: string;
  samples: number;
  top: ProfileEntry[];
}

interface CpuProfile {
  nodes: {
    id: number;
    hitCount?: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  samples?: number[];
}

/** The newest .cpuprofile in a directory (node --cpu-prof writes one per process). */
export function newestProfileIn(directory: string): string | undefined {
  const profiles = readdirSync(directory)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(directory, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return profiles[0];
}

/** The functions with the most self time, merged over every call site of the same function. */
export function topSelfTime(file: string, count = 20): CpuProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const hitsByNode = new Map<number, number>();
  if (profile.samples && profile.samples.length > 0) {
    for (const id of profile.samples) {
      hitsByNode.set(id, (hitsByNode.get(id) ?? 0) + 1);
    }
  } else {
    for (const node of profile.nodes) {
      hitsByNode.set(node.id, node.hitCount ?? 0);
    }
  }
  const byFunction = new Map<string, { entry: Omit<ProfileEntry, 'selfPercent'>; hits: number }>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = hitsByNode.get(node.id) ?? 0;
    if (hits === 0) {
      continue;
    }
    total += hits;
    const { functionName, url, lineNumber } = node.callFrame;
    const location = url === '' ? '' : `${basename(url)}:${lineNumber + 1}`;
    const key = `${functionName}@${url}:${lineNumber}`;
    const known = byFunction.get(key);
    if (known) {
      known.hits += hits;
    } else {
      byFunction.set(key, {
        entry: { functionName: functionName || '(anonymous)', location },
        hits,
      });
    }
  }
  const top = [...byFunction.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, count)
    .map(({ entry, hits }) => ({ ...entry, selfPercent: total > 0 ? (hits / total) * 100 : 0 }));
  return { file, samples: total, top };
}
