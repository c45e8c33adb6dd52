import { Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { appConfig, type AppConfig } from '../config/app.config.js';

/** Checks the shared API key (REQUIRE_API_KEY) in constant time. */
@Injectable()
export class ApiKeyService {
  private readonly expectedDigest?: Buffer;

  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    if (config.requireApiKey && config.apiKey) {
      this.expectedDigest = digest(config.apiKey);
    }
  }

  get required(): boolean {
    return this.expectedDigest !== undefined;
  }

  /** True when no key is required or `presented` is the key. */
  accepts(presented: string | undefined): boolean {
    if (!this.expectedDigest) {
      return true;
    }
    if (presented === undefined) {
      return false;
    }
    // Comparing fixed-length digests keeps the time independent of the key's length too.
    return timingSafeEqual(digest(presented), this.expectedDigest);
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
