// Cluster mode: /metrics reports whether Redis answers (gms_redis_up) and a PING's round trip.
import { Scrape } from '../../bench/prometheus-text.js';
import {
  assertRedisAnswers,
  deleteKeysWithPrefix,
  TEST_REDIS_URL,
  uniqueKeyPrefix,
} from '../support/cluster.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('/metrics with REDIS_URL', () => {
  const prefix = uniqueKeyPrefix();
  let server: TestServer | undefined;

  beforeAll(() => assertRedisAnswers());

  afterAll(async () => {
    await server?.close();
    await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
  });

  it('reports Redis up and times a PING per scrape', async () => {
    server = await startTestServer({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    const scrape = async () => {
      const response = await fetch(`${server!.httpUrl}/metrics`);
      expect(response.status).toBe(200);
      return Scrape.parse(await response.text());
    };
    await scrape();
    const second = await scrape();
    expect(second.value('gms_redis_up')).toBe(1);
    expect(second.value('gms_redis_ping_duration_seconds_count')).toBe(2);
  });
});
