import { Injectable } from '@nestjs/common';
import {
  FANOUT_SECONDS_BOUNDS,
  FixedHistogram,
  REQUEST_SECONDS_BOUNDS,
  TICK_LATENESS_SECONDS_BOUNDS,
} from './fixed-histogram.js';

/** Message kinds counted in and out; an index into the counters' arrays. */
export const MessageKind = { Pose: 0, State: 1, Chat: 2, Control: 3 } as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];
export const MESSAGE_KIND_NAMES = ['pose', 'state', 'chat', 'control'] as const;

/** Why an upgrade was refused, from the HTTP status the upgrade check chose. */
export const REFUSAL_REASON_OF_STATUS: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  429: 'too_many_per_ip',
  500: 'error',
  503: 'capacity',
};

/** What an error code looks like (docs/protocol.md#error-codes): the label takes no other. */
const ERROR_CODE_SHAPE = /^[A-Z][A-Z0-9_]{0,47}$/;
/** Distinct codes labelled; ours are about 30, so a few extensions' own fit too. */
const MAX_ERROR_CODES = 64;

/**
 * The server's counters as plain numbers, so the hot path (a pose in, a frame out) costs one
 * increment and no allocation; /metrics copies them into prom-client at scrape time. One per
 * app (a provider), so several apps in one process keep their own.
 */
@Injectable()
export class ServerCounters {
  connectionsAccepted = 0;
  readonly refused = new Map<string, number>();
  readonly received = [0, 0, 0, 0];
  readonly sent = [0, 0, 0, 0];
  bytesReceived = 0;
  bytesSent = 0;
  droppedSlowClient = 0;
  droppedShed = 0;
  droppedRateLimited = 0;
  readonly disconnects = new Map<number, number>();
  /** `resume` outcomes: [not recovered, recovered]. */
  readonly resumes = [0, 0];
  /** One observation per fan-out of an event to a room's local members, not per recipient. */
  readonly fanoutSeconds = new FixedHistogram(FANOUT_SECONDS_BOUNDS);
  /** Time to handle a request (not a pose), by action name (a bounded set: see ClientInbound). */
  readonly requestSeconds = new Map<string, FixedHistogram>();
  /**
   * With POSE_TICK_MS: how long after its due time each pose tick ran. The tick after a late one
   * comes sooner, and senders that sent nothing new in between are missing from it.
   */
  readonly poseTickLateness = new FixedHistogram(TICK_LATENESS_SECONDS_BOUNDS);
  /** With POSE_TICK_MS: ticks not run because the event loop was busy past their due time. */
  poseTicksSkipped = 0;
  /** `error` replies sent, by error code. */
  readonly requestErrors = new Map<string, number>();

  requestDone(action: string, seconds: number): void {
    let histogram = this.requestSeconds.get(action);
    if (!histogram) {
      histogram = new FixedHistogram(REQUEST_SECONDS_BOUNDS);
      this.requestSeconds.set(action, histogram);
    }
    histogram.observe(seconds);
  }

  /**
   * An extension's handler may reply with an error code of its own: any string, from any number
   * of handlers. The label takes a code shaped like ours, and at most MAX_ERROR_CODES of them.
   */
  requestError(code: unknown): void {
    let label = typeof code === 'string' && ERROR_CODE_SHAPE.test(code) ? code : 'INVALID_CODE';
    if (!this.requestErrors.has(label) && this.requestErrors.size >= MAX_ERROR_CODES) {
      label = 'OTHER';
    }
    this.requestErrors.set(label, (this.requestErrors.get(label) ?? 0) + 1);
  }

  refuse(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  disconnect(code: number): void {
    this.disconnects.set(code, (this.disconnects.get(code) ?? 0) + 1);
  }
}
