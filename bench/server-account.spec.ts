import { createServer, type Server } from 'node:http';
import { Scrape } from './prometheus-text.js';
import { accountOf, scrapeServers } from './server-account.js';

/** Our /metrics lines for these drops and (when given) tick-lateness bucket counts. */
function metricsText(
  dropped: { slow: number; shed: number; limited: number },
  ticks?: { skipped: number; buckets: number[]; over: number },
): string {
  const lines = [
    '# HELP gms_messages_dropped_total Throwaway messages (poses) dropped, by reason.',
    '# TYPE gms_messages_dropped_total counter',
    `gms_messages_dropped_total{reason="slow_client"} ${dropped.slow}`,
    `gms_messages_dropped_total{reason="shed"} ${dropped.shed}`,
    `gms_messages_dropped_total{reason="rate_limited"} ${dropped.limited}`,
  ];
  const bounds = ['0.001', '0.005', '0.025', '1'];
  let cumulative = 0;
  bounds.forEach((bound, index) => {
    cumulative += ticks?.buckets[index] ?? 0;
    lines.push(`gms_pose_tick_lateness_seconds_bucket{le="${bound}"} ${cumulative}`);
  });
  cumulative += ticks?.over ?? 0;
  lines.push(`gms_pose_tick_lateness_seconds_bucket{le="+Inf"} ${cumulative}`);
  lines.push(`gms_pose_tick_lateness_seconds_count ${cumulative}`);
  lines.push(`gms_pose_ticks_skipped_total ${ticks?.skipped ?? 0}`);
  return `${lines.join('\n')}\n`;
}

describe('server account (from /metrics)', () => {
  it('counts the drops in the window by reason', () => {
    const before = Scrape.parse(metricsText({ slow: 10, shed: 5, limited: 1 }));
    const after = Scrape.parse(metricsText({ slow: 25, shed: 105, limited: 1 }));

    expect(accountOf(before, after)).toEqual({
      dropped: { slowClient: 15, shed: 100, rateLimited: 0 },
      ticks: null,
    });
  });

  it("places the window's tick lateness quantiles in the buckets, run and skipped counted", () => {
    // Before: 10 ticks all on time. Window: 100 more: 60 <= 1 ms, 30 <= 5 ms, 9 <= 25 ms, 1 late.
    const before = Scrape.parse(
      metricsText({ slow: 0, shed: 0, limited: 0 }, { skipped: 2, buckets: [10], over: 0 }),
    );
    const after = Scrape.parse(
      metricsText(
        { slow: 0, shed: 0, limited: 0 },
        { skipped: 5, buckets: [70, 30, 9, 0], over: 1 },
      ),
    );

    expect(accountOf(before, after)?.ticks).toEqual({
      run: 100,
      skipped: 3,
      lateP50Ms: 1,
      lateP90Ms: 5,
      lateP99Ms: 25,
    });
  });

  it('answers a quantile past the last bucket as null', () => {
    const before = Scrape.parse(metricsText({ slow: 0, shed: 0, limited: 0 }));
    const after = Scrape.parse(
      metricsText({ slow: 0, shed: 0, limited: 0 }, { skipped: 0, buckets: [1, 0, 0, 0], over: 3 }),
    );

    expect(accountOf(before, after)?.ticks).toMatchObject({ run: 4, lateP50Ms: null });
  });

  it('has no account for a server without our metrics', () => {
    const other = Scrape.parse('process_cpu_seconds_total 3\n');
    expect(accountOf(other, other)).toBeUndefined();
  });

  describe('scraping', () => {
    const servers: Server[] = [];

    async function serve(status: number, body: string): Promise<string> {
      const server = createServer((_request, response) => {
        response.writeHead(status, { 'content-type': 'text/plain' });
        response.end(body);
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      return `ws://127.0.0.1:${port}/`;
    }

    afterEach(async () => {
      for (const server of servers.splice(0)) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });

    it("sums the /metrics of a layout's instances", async () => {
      const first = await serve(200, metricsText({ slow: 1, shed: 2, limited: 3 }));
      const second = await serve(200, metricsText({ slow: 10, shed: 20, limited: 30 }));

      const scrape = await scrapeServers([first, second]);

      expect(scrape?.value('gms_messages_dropped_total', { reason: 'shed' })).toBe(22);
      expect(scrape?.value('gms_messages_dropped_total', { reason: 'rate_limited' })).toBe(33);
    });

    it('has nothing when an instance refuses (credentials), answers junk or does not answer', async () => {
      const open = await serve(200, metricsText({ slow: 1, shed: 2, limited: 3 }));
      const locked = await serve(401, 'unauthorized');
      const other = await serve(200, '<html>not metrics</html>');
      const gone = await serve(200, '');
      await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));

      expect(await scrapeServers([open, locked])).toBeUndefined();
      expect(await scrapeServers([open, other])).toBeUndefined();
      expect(await scrapeServers([open, gone])).toBeUndefined();
    });
  });
});
