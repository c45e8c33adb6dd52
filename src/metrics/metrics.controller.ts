import { Controller, Get, Header, Res, UseGuards } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { MetricsGuard } from './metrics.guard.js';
import { MetricsService } from './metrics.service.js';

/** `GET /metrics`: the Prometheus text format (docs/metrics.md). */
@Controller('metrics')
@UseGuards(MetricsGuard)
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  async scrape(@Res() response: ServerResponse): Promise<void> {
    const body = await this.metrics.scrape();
    response.writeHead(200, { 'Content-Type': this.metrics.contentType });
    response.end(body);
  }
}
