import { Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { appConfig, type AppConfig } from '../config/app.config.js';

/** Checks the shared API key (AUTH_MODE=api-key, or API_KEY for /stats) in constant time. */
@Injectable()
export class ApiKeyService {
  private readonly keyDigest?: Buffer;
  /** AUTH_MODE=api-key: every upgrade needs the key. */
  readonly required: boolean;

  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    if (config.apiKey) {
      this.keyDigest = digest(config.apiKey);
    }
    this.required = config.requireApiKey && this.keyDigest !== undefined;
  }

  /** True when no key is required or `presented` is the key. */
  accepts(presented: string | undefined): boolean {
    return !this.required || this.isKey(presented);
  }

  /** True when an API key is configured and `presented` is it, whatever AUTH_MODE is. */
  isKey(presented: string | undefined): boolean {
    if (!this.keyDigest || presented === undefined) {
      return false;
    }
    // Comparing fixed-length digests keeps the time independent of the key's length too.
    return timingSafeEqual(digest(presented), this.keyDigest);
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
