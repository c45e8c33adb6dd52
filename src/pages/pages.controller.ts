import { Controller, Get, Inject, Logger, NotFoundException, Req, Res } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestUrlOf } from '../auth/request-url.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import {
  ADMIN_FILES,
  DEMO_FILES,
  SHARED_FILES,
  readPublicFiles,
  readSdkFiles,
  type PageFile,
} from './page-files.js';

/**
 * Both pages load only same-origin files: no inline script or style, no CDN. 'self' also
 * admits the same-origin ws:// / wss:// socket in current browsers (checked by the browser test),
 * so connect-src needs no entry of its own.
 */
export const PAGES_CSP =
  "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/**
 * `/demo`, `/admin` and the files they load (public/, and the SDK's build as /sdk/). Every file is
 * read at boot from a fixed list; a request is answered by an exact lookup of its path, so no
 * part of a URL ever becomes part of a file path. The data the admin page shows comes from
 * /stats, which keeps its own guard.
 */
@Controller()
export class PagesController {
  private readonly files: Map<string, PageFile>;

  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    this.files = readPublicFiles({ ...SHARED_FILES, ...ADMIN_FILES });
    if (config.demoPage) {
      const sdk = readSdkFiles();
      if (sdk.size === 0) {
        new Logger('Pages').warn('client/dist is empty: run `npm run client:build` for /demo');
      }
      for (const [path, file] of [...readPublicFiles(DEMO_FILES), ...sdk]) {
        this.files.set(path, file);
      }
    }
  }

  @Get(['demo', 'admin', 'pages/:file', 'sdk/*path'])
  serve(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    const path = requestUrlOf(request)?.pathname;
    const file = path === undefined ? undefined : this.files.get(path);
    if (!file) {
      throw new NotFoundException();
    }
    response.writeHead(200, {
      'Content-Type': file.contentType,
      'Content-Length': file.body.length,
      'Content-Security-Policy': PAGES_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      // Small files read at boot: revalidating costs little and a new build shows at once.
      'Cache-Control': 'no-cache',
    });
    response.end(file.body);
  }
}
