import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** USER_HZ: the unit of utime/stime in /proc/PID/stat. 100 on every mainstream Linux build. */
const CLOCK_TICKS_PER_SECOND = readClockTicks();

function readClockTicks(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** CPU seconds (user + system) the process has used, or undefined once it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes (VmRSS), or undefined once the process is gone. */
export function rssBytesOf(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole machine, from the first line of /proc/stat. */
export function hostCpuTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = values[3] + values[4]; // idle + iowait
  return { busy: total - idle, total };
}

export function hostCpuCount(): number {
  return cpus().length;
}

/** The soft and hard "Max open files" of this process (what `ulimit -n` shows). */
export function openFilesLimit(): { soft: number; hard: number } {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const parse = (value: string | undefined): number =>
    value === undefined || value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
  return { soft: parse(match?.[1]), hard: parse(match?.[2]) };
}

/**
 * Samples a process's RSS every 250 ms so a step can report the peak, which a single reading
 * at the end would miss (buffers grow and are freed within a step).
 */
export class RssSampler {
  private maxBytes = 0;
  private lastBytes: number | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 250,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Starts a new peak, e.g. at the beginning of the next step on the same server. */
  resetMax(): void {
    this.maxBytes = 0;
    this.sample();
  }

  get max(): number | undefined {
    return this.maxBytes > 0 ? this.maxBytes : undefined;
  }

  get last(): number | undefined {
    return this.lastBytes;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const rss = rssBytesOf(this.pid);
    if (rss !== undefined) {
      this.lastBytes = rss;
      this.maxBytes = Math.max(this.maxBytes, rss);
    }
  }
}

/** The CPU a process used over a window, as % of one core (200 = two cores busy). */
export class CpuWindow {
  private readonly startCpu: number | undefined;
  private readonly startWall = performance.now();

  constructor(private readonly pid: number) {
    this.startCpu = cpuSecondsOf(pid);
  }

  percent(): number | undefined {
    const endCpu = cpuSecondsOf(this.pid);
    const seconds = (performance.now() - this.startWall) / 1000;
    if (this.startCpu === undefined || endCpu === undefined || seconds <= 0) {
      return undefined;
    }
    return ((endCpu - this.startCpu) / seconds) * 100;
  }
}

/** The share of the whole machine's CPU that was busy over a window, in % of all cores. */
export class HostCpuWindow {
  private readonly start = hostCpuTicks();

  percent(): number {
    const end = hostCpuTicks();
    const total = end.total - this.start.total;
    return total > 0 ? ((end.busy - this.start.busy) / total) * 100 : 0;
  }
}

/** Reads samples of a value a few times and returns the median, to smooth one noisy reading. */
export async function medianRss(
  pid: number,
  samples = 5,
  gapMs = 200,
): Promise<number | undefined> {
  const readings: number[] = [];
  for (let index = 0; index < samples; index++) {
    const rss = rssBytesOf(pid);
    if (rss !== undefined) {
      readings.push(rss);
    }
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  readings.sort((a, b) => a - b);
  return readings.length > 0 ? readings[Math.floor(readings.length / 2)] : undefined;
}
