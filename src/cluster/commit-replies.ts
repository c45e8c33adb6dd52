import { Injectable } from '@nestjs/common';

/**
 * Decides, for each state change this instance commits with a publish, which path answers the
 * actor's request: the echo of its `state_updated` on the room's channel (the reply, with the
 * requestId) or the store's error (UNAVAILABLE). Both can happen when the commit script ran but
 * its answer was lost or timed out; whichever comes first wins, so a request gets exactly one
 * outcome:
 *
 * - the echo first: the actor has its reply, and the commit surely happened (the script publishes
 *   after it writes), so the store reports success despite the lost answer;
 * - the lost answer first: the actor gets the error, and a later echo reaches it as a plain room
 *   event (the change is real), without the requestId.
 *
 * Shared by RedisRoomStore (which opens and settles commits) and RedisRoomBus (which hears echoes).
 */
@Injectable()
export class CommitReplies {
  private lastId = 0;
  /** Commits whose store answer is awaited: true once their echo came (and replied). */
  private readonly awaited = new Map<string, boolean>();
  /** Commits answered with an error, whose echo may still come; oldest first. */
  private readonly failed = new Set<string>();

  /** A new commit, identified on this instance by the id its envelope carries. */
  open(): string {
    const commitId = String(++this.lastId);
    this.awaited.set(commitId, false);
    return commitId;
  }

  /** The store answered (committed or not): the echo, if any, is the reply as usual. */
  answered(commitId: string): void {
    this.awaited.delete(commitId);
  }

  /**
   * The store's answer was lost. True: the echo came first, the commit happened and the actor
   * has its reply (report success). False: the caller reports the error, and a later echo is no
   * reply.
   */
  answerLost(commitId: string): boolean {
    const echoed = this.awaited.get(commitId) === true;
    this.awaited.delete(commitId);
    if (!echoed) {
      this.rememberFailed(commitId);
    }
    return echoed;
  }

  /**
   * The echo of an own commit arrived. True: it is the actor's reply. False: the request was
   * answered with an error already, so the actor gets the update without its requestId.
   */
  echoIsReply(commitId: string | undefined): boolean {
    if (commitId === undefined) {
      return true;
    }
    if (this.failed.delete(commitId)) {
      return false;
    }
    if (this.awaited.has(commitId)) {
      this.awaited.set(commitId, true);
    }
    return true;
  }

  /** Bounded: a commit that never happened has no echo to clear it. */
  private rememberFailed(commitId: string): void {
    this.failed.add(commitId);
    if (this.failed.size > MAX_FAILED_COMMITS) {
      const [oldest] = this.failed;
      this.failed.delete(oldest);
    }
  }
}

/** Failed commits remembered at most, awaiting an echo that may never come. */
const MAX_FAILED_COMMITS = 10_000;
