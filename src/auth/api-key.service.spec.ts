import { loadAppConfig } from '../config/app.config.js';
import { ApiKeyService } from './api-key.service.js';

describe('ApiKeyService', () => {
  it('accepts anything when no key is required', () => {
    const service = new ApiKeyService(loadAppConfig({}));
    expect(service.required).toBe(false);
    expect(service.accepts(undefined)).toBe(true);
    expect(service.accepts('')).toBe(true);
    expect(service.accepts('whatever')).toBe(true);
  });

  it('requires nothing when API_KEY is set but REQUIRE_API_KEY is not', () => {
    const service = new ApiKeyService(loadAppConfig({ API_KEY: 's3cret' }));
    expect(service.required).toBe(false);
    expect(service.accepts(undefined)).toBe(true);
  });

  describe('with REQUIRE_API_KEY=true', () => {
    const service = new ApiKeyService(
      loadAppConfig({ REQUIRE_API_KEY: 'true', API_KEY: 's3cret-key' }),
    );

    it('is required', () => {
      expect(service.required).toBe(true);
    });

    it('rejects a missing key', () => {
      expect(service.accepts(undefined)).toBe(false);
      expect(service.accepts('')).toBe(false);
    });

    it.each(['wrong', 's3cret', 's3cret-key ', ' s3cret-key', 'S3CRET-KEY', 's3cret-key2'])(
      'rejects the wrong key %j',
      (presented) => {
        expect(service.accepts(presented)).toBe(false);
      },
    );

    it('accepts the right key', () => {
      expect(service.accepts('s3cret-key')).toBe(true);
    });
  });
});
