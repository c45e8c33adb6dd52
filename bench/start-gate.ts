/**
 * --side-by-side: lets the servers' generators start sending together, so that their measured
 * windows cover the same seconds. Each server's run is one party: it waits at the gate once its
 * users have joined, and leaves when its run ends, whether it got there or failed before (a server
 * that did not start, users that could not join), so the other is never kept waiting for it.
 */
export class StartGate {
  /** Parties that have neither waited nor left. */
  private remaining: number;
  private readonly opened: Promise<void>;
  private open!: () => void;

  constructor(parties: number) {
    this.remaining = parties;
    this.opened = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  /** One party's handle; make one per party the gate was made for. */
  party(): GateParty {
    let arrived = false;
    const arrive = (): void => {
      if (arrived) {
        return;
      }
      arrived = true;
      this.remaining--;
      if (this.remaining === 0) {
        this.open();
      }
    };
    return {
      wait: () => {
        arrive();
        return this.opened;
      },
      leave: arrive,
    };
  }
}

export interface GateParty {
  /** Resolves once every party waits at the gate or has left. */
  wait(): Promise<void>;
  /** This party will not wait (its run failed or ended): the others go on without it. */
  leave(): void;
}
