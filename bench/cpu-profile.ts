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
  /** 'measured windows' when the samples could be cut to them, else 'whole process'. */
  scope: 'measured windows' | 'whole process';
  samples: number;
  /** Share of the samples in which the server's thread was idle, in %. */
  idlePercent: number;
  /** By self time, (idle) left out; percentages are of all samples in scope. */
  top: ProfileEntry[];
}

/** A span of CLOCK_MONOTONIC in microseconds: process.hrtime and V8's profiler both use it. */
export interface MonotonicWindow {
  startUs: number;
  endUs: number;
}

export function monotonicNowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

interface CpuProfile {
  nodes: {
    id: number;
    hitCount?: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  startTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Sample counts per node, only of the samples taken inside the windows (if any are given). */
function hitsByNodeOf(profile: CpuProfile, windows: MonotonicWindow[]): Map<number, number> {
  const hits = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let time = profile.startTime;
  for (let index = 0; index < samples.length; index++) {
    time += deltas[index] ?? 0;
    const inScope =
      windows.length === 0 ||
      windows.some((window) => time >= window.startUs && time <= window.endUs);
    if (inScope) {
      hits.set(samples[index], (hits.get(samples[index]) ?? 0) + 1);
    }
  }
  return hits;
}

/** The newest .cpuprofile in a directory (node --cpu-prof writes one per process). */
export function newestProfileIn(directory: string): string | undefined {
  const profiles = readdirSync(directory)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(directory, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return profiles[0];
}

/**
 * The functions with the most self time, merged over every call site of the same function.
 * Given the measured windows, only their samples count, so that start-up and joins do not
 * crowd out the steady state.
 */
export function topSelfTime(
  file: string,
  count: number,
  windows: MonotonicWindow[],
): CpuProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  let scope: CpuProfileSummary['scope'] = 'measured windows';
  let hitsByNode = hitsByNodeOf(profile, windows);
  if (hitsByNode.size === 0) {
    scope = 'whole process';
    hitsByNode = hitsByNodeOf(profile, []);
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
  const percentOf = (hits: number): number => (total > 0 ? (hits / total) * 100 : 0);
  const ranked = [...byFunction.values()].sort((a, b) => b.hits - a.hits);
  const idle = ranked.find(({ entry }) => entry.functionName === '(idle)');
  const top = ranked
    .filter((item) => item !== idle)
    .slice(0, count)
    .map(({ entry, hits }) => ({ ...entry, selfPercent: percentOf(hits) }));
  return { file, scope, samples: total, idlePercent: percentOf(idle?.hits ?? 0), top };
}
