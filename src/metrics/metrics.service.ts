import { Inject, Injectable, Optional, type OnModuleInit } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RoomEvents } from '../extensions/room-events.service.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { histogramHeader } from '../telemetry/fixed-histogram.js';
import { MESSAGE_KIND_NAMES, ServerCounters } from '../telemetry/server-counters.js';
import { STORE_PROBE, type StoreProbe } from '../telemetry/store-probe.js';
import { UsersService } from '../users/users.service.js';

/**
 * The app's Prometheus registry (its own, not prom-client's global one, so several apps in one
 * process do not clash). The hot-path numbers live in ServerCounters as plain fields and are
 * copied in here only when /metrics is scraped.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  private readonly joins: Counter;
  private readonly leaves: Counter;
  private readonly commits: Counter;
  private readonly redisUp?: Gauge;
  private readonly redisLatency?: Histogram;

  constructor(
    private readonly counters: ServerCounters,
    private readonly users: UsersService,
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    private readonly events: RoomEvents,
    @Optional() @Inject(STORE_PROBE) private readonly probe?: StoreProbe,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    new Gauge({
      name: 'gms_connections',
      help: 'WebSocket connections open on this instance.',
      registers,
      collect: function (this: Gauge) {
        this.set(users.count());
      },
    });
    exported('gms_connections_accepted_total', 'Upgrades accepted.', () => [
      [{}, counters.connectionsAccepted],
    ]);
    exported(
      'gms_connections_refused_total',
      'Upgrades refused (or closed 44xx at once), by reason.',
      () => [...counters.refused].map(([reason, value]) => [{ reason }, value]),
      ['reason'],
    );
    exported(
      'gms_messages_received_total',
      'Client messages received, by kind.',
      () => MESSAGE_KIND_NAMES.map((kind, index) => [{ kind }, counters.received[index]]),
      ['kind'],
    );
    exported(
      'gms_messages_sent_total',
      'Server messages queued for clients (one per recipient), by kind.',
      () => MESSAGE_KIND_NAMES.map((kind, index) => [{ kind }, counters.sent[index]]),
      ['kind'],
    );
    exported('gms_bytes_received_total', 'Bytes of client frames received.', () => [
      [{}, counters.bytesReceived],
    ]);
    exported('gms_bytes_sent_total', 'Bytes of WebSocket frames queued for clients.', () => [
      [{}, counters.bytesSent],
    ]);
    exported(
      'gms_messages_dropped_total',
      'Throwaway messages (poses) dropped, by reason.',
      () => [
        [{ reason: 'slow_client' }, counters.droppedSlowClient],
        [{ reason: 'shed' }, counters.droppedShed],
        [{ reason: 'rate_limited' }, counters.droppedRateLimited],
      ],
      ['reason'],
    );
    exported(
      'gms_pose_ticks_skipped_total',
      'With POSE_TICK_MS: pose ticks skipped because the event loop was busy past them.',
      () => [[{}, counters.poseTicksSkipped]],
    );
    exported(
      'gms_resume_total',
      'resume requests: recovered="true" took held seats back, "false" found none or failed.',
      () => [
        [{ recovered: 'false' }, counters.resumes[0]],
        [{ recovered: 'true' }, counters.resumes[1]],
      ],
      ['recovered'],
    );
    exported(
      'gms_server_disconnects_total',
      'Connections the server closed, by close code.',
      () => [...counters.disconnects].map(([code, value]) => [{ code: String(code) }, value]),
      ['code'],
    );
    exported(
      'gms_request_errors_total',
      'error replies sent to clients, by error code.',
      () => [...counters.requestErrors].map(([code, value]) => [{ code }, value]),
      ['code'],
    );
    new Gauge({
      name: 'gms_rooms',
      help: 'Rooms in the room store.',
      registers,
    });
    new Gauge({
      name: 'gms_room_members',
      help: 'Members of all rooms in the room store.',
      registers,
    });
    if (probe) {
      this.redisUp = new Gauge({
        name: 'gms_redis_up',
        help: '1 when Redis answered a PING at the last scrape (within 1 s), else 0.',
        registers,
      });
      this.redisLatency = new Histogram({
        name: 'gms_redis_ping_duration_seconds',
        help: 'Round trip of a Redis PING on the commands connection, one per scrape.',
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
        registers,
      });
    }
    this.joins = new Counter({ name: 'gms_joins_total', help: 'Room joins.', registers });
    this.leaves = new Counter({ name: 'gms_leaves_total', help: 'Room leaves.', registers });
    this.commits = new Counter({
      name: 'gms_state_commits_total',
      help: 'Room state changes committed on this instance.',
      registers,
    });

    /** A counter whose values are read from plain numbers at scrape time. */
    function exported(
      name: string,
      help: string,
      values: () => [Record<string, string>, number][],
      labelNames: string[] = [],
    ): void {
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect: function (this: Counter) {
          this.reset();
          for (const [labels, value] of values()) {
            this.inc(labels, value);
          }
        },
      });
    }
  }

  onModuleInit(): void {
    this.events.on('member.joined', () => this.joins.inc());
    this.events.on('member.left', () => this.leaves.inc());
    this.events.on('state.committed', () => this.commits.inc());
  }

  /** The text exposition; room totals are read from the store here, once per scrape. */
  async scrape(): Promise<string> {
    await Promise.all([this.updateRooms(), this.pingStore()]);
    const text = await this.registry.metrics();
    const requests = [...this.counters.requestSeconds]
      .map(([action, histogram]) =>
        histogram.samples('gms_request_duration_seconds', `action="${action}"`),
      )
      .join('');
    return (
      text +
      this.counters.fanoutSeconds.toPrometheus(
        'gms_fanout_duration_seconds',
        "Time to queue one event for a room's members on this instance.",
      ) +
      this.counters.poseTickLateness.toPrometheus(
        'gms_pose_tick_lateness_seconds',
        'With POSE_TICK_MS: how long after its due time each pose tick ran.',
      ) +
      histogramHeader(
        'gms_request_duration_seconds',
        'Time to handle a client request (poses are not timed), by action.',
      ) +
      requests
    );
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async pingStore(): Promise<void> {
    if (!this.probe) {
      return;
    }
    try {
      this.redisLatency?.observe(await this.probe.ping());
      this.redisUp?.set(1);
    } catch {
      this.redisUp?.set(0);
    }
  }

  private async updateRooms(): Promise<void> {
    const rooms = this.registry.getSingleMetric('gms_rooms') as Gauge | undefined;
    const members = this.registry.getSingleMetric('gms_room_members') as Gauge | undefined;
    try {
      const summaries = await this.store.list();
      rooms?.set(summaries.length);
      members?.set(summaries.reduce((sum, room) => sum + room.userCount, 0));
    } catch {
      // The store is unavailable (Redis down): leave the last values; gms_redis_up says why.
    }
  }
}
