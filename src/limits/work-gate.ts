/** How much of one kind of work may run at once, and how much more may wait for a place. */
export interface WorkGateLimits {
  /** Jobs running at once (at least 1). */
  concurrency: number;
  /** Jobs waiting for a place beyond those (0: none wait, a job finding no place is refused). */
  queue: number;
}

/** What a gate has done so far: for tests and the operator's eyes. */
export interface WorkGateStats {
  running: number;
  waiting: number;
  /** Jobs started since the gate was made. */
  started: number;
  /** Jobs refused because the queue was full. */
  refused: number;
}

/**
 * Runs at most `concurrency` jobs at once and lets at most `queue` more wait, first come first
 * served. A job beyond both is refused at once with `refuse()`: a burst then costs neither a
 * growing backlog (memory, and a wait nobody bounds) nor more of the resource the jobs share.
 */
export class WorkGate {
  private limits: WorkGateLimits;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private started = 0;
  private refused = 0;

  constructor(
    limits: WorkGateLimits,
    private readonly refuse: () => Error,
  ) {
    this.limits = checked(limits);
  }

  /** New limits; jobs already running or waiting keep their place. */
  configure(limits: WorkGateLimits): void {
    this.limits = checked(limits);
    this.startWaiting();
  }

  /** Runs `job` once a place is free; rejects with `refuse()` if none is and the queue is full. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await job();
    } finally {
      this.leave();
    }
  }

  stats(): WorkGateStats {
    return {
      running: this.active,
      waiting: this.waiting.length,
      started: this.started,
      refused: this.refused,
    };
  }

  private enter(): Promise<void> {
    if (this.active < this.limits.concurrency) {
      this.begin();
      return Promise.resolve();
    }
    if (this.waiting.length >= this.limits.queue) {
      this.refused++;
      return Promise.reject(this.refuse());
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private leave(): void {
    this.active--;
    this.startWaiting();
  }

  /** Hands free places to waiting jobs, oldest first; each counts as running from here. */
  private startWaiting(): void {
    while (this.active < this.limits.concurrency && this.waiting.length > 0) {
      this.begin();
      this.waiting.shift()?.();
    }
  }

  private begin(): void {
    this.active++;
    this.started++;
  }
}

function checked(limits: WorkGateLimits): WorkGateLimits {
  const { concurrency, queue } = limits;
  if (!Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(queue) || queue < 0) {
    throw new Error(
      `A work gate needs concurrency >= 1 and queue >= 0, not ${concurrency}/${queue}`,
    );
  }
  return { concurrency, queue };
}
