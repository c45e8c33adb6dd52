const MAX_SHED_RATE = 0.95;
const SHED_STEP_UP = 0.1;
const SHED_STEP_DOWN = 0.05;
/** Turns over budget in a row before shedding starts: one long turn (a GC pause) is no overload. */
const TURNS_OVER_BEFORE_SHEDDING = 3;

/**
 * Sheds throwaway input (pose broadcasts) when the server cannot keep up, before it costs a
 * fan-out. Each event-loop turn's busy time is measured from its first broadcast to the flush
 * that ends it; while turns run over the budget (POSE_SHED_TURN_MS) the share of poses dropped
 * on arrival rises, and it falls again once turns are short. Random, so no sender is starved:
 * every avatar keeps moving, just less often, and state, membership and chat are never shed.
 */
export class LoadShedder {
  private rate = 0;
  private turnStartedAt = 0;
  private turnsOver = 0;

  constructor(
    /** POSE_SHED_TURN_MS: a turn busy past this many ms is over budget. */
    private readonly budgetMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly random: () => number = Math.random,
  ) {}

  /** At each throwaway broadcast: true when this one should be dropped. */
  shouldShed(): boolean {
    if (this.turnStartedAt === 0) {
      this.turnStartedAt = this.now();
    }
    return this.rate > 0 && this.random() < this.rate;
  }

  /** At the end of each turn's work (the flush). */
  endTurn(): void {
    if (this.turnStartedAt === 0) {
      if (this.rate > 0) {
        this.rate = Math.max(0, this.rate - SHED_STEP_DOWN);
      }
      return;
    }
    const busyMs = this.now() - this.turnStartedAt;
    this.turnStartedAt = 0;
    if (busyMs > this.budgetMs) {
      this.turnsOver++;
      if (this.turnsOver >= TURNS_OVER_BEFORE_SHEDDING) {
        this.rate = Math.min(MAX_SHED_RATE, this.rate + SHED_STEP_UP);
      }
      return;
    }
    this.turnsOver = 0;
    if (busyMs < this.budgetMs / 2 && this.rate > 0) {
      this.rate = Math.max(0, this.rate - SHED_STEP_DOWN);
    }
  }

  /** The share of throwaway broadcasts currently dropped on arrival (0-0.95). */
  shedRate(): number {
    return this.rate;
  }
}
