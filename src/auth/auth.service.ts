import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ID_PATTERN } from '../protocol/protocol.js';
import { ApiKeyService } from './api-key.service.js';
import { bearerTokenOf } from './bearer-token.js';
import { credentialsOf } from './credentials.js';
import type { Identity } from './identity.js';
import { InvalidTokenError } from './invalid-token.error.js';
import { JwtVerifier } from './jwt-verifier.js';
import type { TokenClaims } from './token-claims.js';

/** The upgrade's verdict: who connects, or the HTTP status that refuses the socket. */
export type AuthResult =
  { ok: true; identity: Identity } | { ok: false; status: number; message: string };

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Decides who a connection is (AUTH_MODE none, api-key or jwt), once, at the upgrade; the
 * gateway picks the identity up with `identityOf` when the socket opens.
 */
@Injectable()
export class AuthService implements OnModuleInit {
  private readonly logger = new Logger(AuthService.name);
  private readonly identities = new WeakMap<IncomingMessage, Identity>();
  /** Set only with AUTH_MODE=jwt; built here so that a bad key stops the boot. */
  private readonly verifier?: JwtVerifier;

  constructor(
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly apiKeys: ApiKeyService,
  ) {
    if (config.authMode === 'jwt') {
      this.verifier = JwtVerifier.fromSettings(config.jwt);
    }
  }

  onModuleInit(): void {
    if (this.config.authMode === 'none' && !LOOPBACK_HOSTS.has(this.config.host)) {
      this.logger.warn(
        `AUTH_MODE=none while listening on ${this.config.host}: ANYONE who can reach this ` +
          'port can connect under ANY userId, take over its session and its rooms. ' +
          'Set AUTH_MODE=jwt (or api-key), or HOST=127.0.0.1 behind an authenticating proxy.',
      );
    }
    if (this.verifier) {
      this.logger.log(`AUTH_MODE=jwt: tokens signed with ${this.verifier.algorithms.join(', ')}`);
    }
  }

  get jwtEnabled(): boolean {
    return this.verifier !== undefined;
  }

  /**
   * Checks an upgrade request and remembers the identity for `identityOf`.
   * @param address the client's address (see clientAddressOf), kept for per-IP quotas.
   */
  async authenticate(request: IncomingMessage, address: string): Promise<AuthResult> {
    const result = this.verifier
      ? await this.authenticateToken(this.verifier, request, address)
      : this.authenticateDeclared(request, address);
    if (result.ok) {
      this.identities.set(request, result.identity);
    }
    return result;
  }

  /** The identity `authenticate` gave this upgrade request. */
  identityOf(request: IncomingMessage): Identity | undefined {
    return this.identities.get(request);
  }

  /**
   * The claims of a fresh token for the same user (refresh_token). Throws an InvalidTokenError
   * when it is refused or names another `sub`.
   */
  async refresh(current: Identity, token: string): Promise<Identity> {
    if (!this.verifier) {
      throw new InvalidTokenError('tokens are only used with AUTH_MODE=jwt');
    }
    const claims = await this.verifier.verify(token);
    if (claims.userId !== current.userId) {
      throw new InvalidTokenError('the token is for another user');
    }
    if (claims.expiresAt === undefined) {
      throw new InvalidTokenError('a refresh token must carry "exp"');
    }
    return identityFrom(claims, current.address);
  }

  /**
   * HTTP: the API key (when one is configured) or a valid token (Bearer or ?token=) that says
   * `admin: true`.
   */
  async isAdmin(request: IncomingMessage): Promise<boolean> {
    if (this.apiKeys.isKey(credentialsOf(request).apiKey)) {
      return true;
    }
    const token = this.verifier && bearerTokenOf(request);
    if (!this.verifier || !token) {
      return false;
    }
    try {
      return (await this.verifier.verify(token)).admin;
    } catch {
      return false;
    }
  }

  /** AUTH_MODE none or api-key: the client declares its userId (?userId=), if any. */
  private authenticateDeclared(request: IncomingMessage, address: string): AuthResult {
    const { userId, apiKey } = credentialsOf(request);
    if (!this.apiKeys.accepts(apiKey)) {
      return { ok: false, status: 401, message: 'Unauthorized' };
    }
    if (userId !== undefined && !ID_PATTERN.test(userId)) {
      return {
        ok: false,
        status: 400,
        message: 'userId must be 1-64 characters of [A-Za-z0-9._-]',
      };
    }
    return {
      ok: true,
      identity: { userId, verified: false, mayCreateRooms: true, admin: false, address },
    };
  }

  private async authenticateToken(
    verifier: JwtVerifier,
    request: IncomingMessage,
    address: string,
  ): Promise<AuthResult> {
    const token = bearerTokenOf(request);
    if (!token) {
      return {
        ok: false,
        status: 401,
        message:
          'A token is required: ?token=, Authorization: Bearer or Sec-WebSocket-Protocol bearer.<token>',
      };
    }
    let claims: TokenClaims;
    try {
      claims = await verifier.verify(token);
    } catch (error) {
      const reason = error instanceof InvalidTokenError ? error.message : 'malformed token';
      return { ok: false, status: 401, message: `Invalid token: ${reason}` };
    }
    const declared = credentialsOf(request).userId;
    if (declared !== undefined && declared !== claims.userId) {
      return { ok: false, status: 403, message: 'userId does not match the token' };
    }
    return { ok: true, identity: identityFrom(claims, address) };
  }
}

function identityFrom(claims: TokenClaims, address: string): Identity {
  return { ...claims, verified: true, address };
}
