import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { listenError } from '../lifecycle/listen-error.js';
import { MetricsService } from './metrics.service.js';

/**
 * METRICS_PORT: a plain HTTP server answering `GET /metrics` without auth, for a private
 * network only; it starts and stops with the app.
 */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsServer.name);
  private server?: Server;

  constructor(
    private readonly metrics: MetricsService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const port = this.config.metricsPort;
    if (port === undefined) {
      return;
    }
    const server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (request.method !== 'GET' || path !== '/metrics') {
        response.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found\n');
        return;
      }
      this.metrics.scrape().then(
        (body) => response.writeHead(200, { 'Content-Type': this.metrics.contentType }).end(body),
        (error: unknown) => {
          this.logger.error(`Metrics scrape failed: ${String(error)}`);
          response.writeHead(500, { 'Content-Type': 'text/plain' }).end('Scrape failed\n');
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void =>
        reject(listenError('METRICS_PORT', this.config.host, port, error));
      server.once('error', onError);
      server.listen(port, this.config.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.server = server;
    this.logger.log(`Metrics on http://${this.config.host}:${port}/metrics`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
