import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { clientAddressOf, TrustedProxies } from './client-address.js';

/** What an upgrade check decides: let the socket in, or refuse it with an HTTP status. */
export type UpgradeDecision = { ok: true } | { ok: false; status: number; message: string };

const ADMITTED: UpgradeDecision = { ok: true };

/**
 * The checks at the upgrade that need no identity: the Origin (ALLOWED_ORIGINS, 403), the server's
 * capacity (MAX_CONNECTIONS, 503) and one address's share (MAX_CONNECTIONS_PER_IP, 429). It also
 * resolves the client's address once (TRUST_PROXY) and counts the open sockets per address.
 */
@Injectable()
export class ConnectionAdmission implements OnModuleInit {
  private readonly logger = new Logger(ConnectionAdmission.name);
  private readonly trusted: TrustedProxies;
  private readonly anyOrigin: boolean;
  private readonly origins: ReadonlySet<string>;
  private readonly addresses = new WeakMap<IncomingMessage, string>();
  /** The address whose place each admitted request holds, until it gives the place back. */
  private readonly places = new WeakMap<IncomingMessage, string>();
  private readonly openPerAddress = new Map<string, number>();
  private openTotal = 0;

  constructor(@Inject(appConfig.KEY) private readonly config: AppConfig) {
    this.trusted = new TrustedProxies(config.trustProxy);
    this.anyOrigin = config.allowedOrigins.includes('*');
    this.origins = new Set(config.allowedOrigins.map((origin) => origin.toLowerCase()));
  }

  onModuleInit(): void {
    if (this.anyOrigin && this.config.authMode === 'none') {
      this.logger.warn(
        'ALLOWED_ORIGINS=* with AUTH_MODE=none: any web page can open a socket here as any user. ' +
          'Set ALLOWED_ORIGINS to your sites and turn on AUTH_MODE=jwt before exposing this server.',
      );
    }
  }

  /**
   * Admits an upgrade and holds its place at once, so upgrades still being authenticated count
   * too; the place is given back when the request's TCP socket closes (a refused handshake just
   * after, an open WebSocket when it ends), or by releasePlace.
   */
  admit(request: IncomingMessage): UpgradeDecision {
    const origin = request.headers.origin;
    // Browsers always send Origin; other clients may omit it, and could forge it anyway.
    if (!this.anyOrigin && origin !== undefined && !this.origins.has(origin.toLowerCase())) {
      return { ok: false, status: 403, message: 'Origin not allowed' };
    }
    if (this.openTotal >= this.config.maxConnections) {
      return { ok: false, status: 503, message: 'Server at capacity' };
    }
    const address = this.addressOf(request);
    const perIp = this.config.maxConnectionsPerIp;
    if (perIp > 0 && (this.openPerAddress.get(address) ?? 0) >= perIp) {
      return { ok: false, status: 429, message: 'Too many connections from this address' };
    }
    this.hold(address);
    this.places.set(request, address);
    request.socket.once('close', () => this.releasePlace(request));
    return ADMITTED;
  }

  /**
   * Gives back the place `request` holds, now rather than when its TCP socket closes: for an
   * upgrade refused after the handshake (told by a close code), which never becomes a connection.
   * A request that holds no place (refused by admit, or already given back) is left alone.
   */
  releasePlace(request: IncomingMessage): void {
    const address = this.places.get(request);
    if (address === undefined) {
      return;
    }
    this.places.delete(request);
    this.release(address);
  }

  /** The client's address (see clientAddressOf), resolved once per request. */
  addressOf(request: IncomingMessage): string {
    let address = this.addresses.get(request);
    if (address === undefined) {
      address = clientAddressOf(request, this.trusted);
      this.addresses.set(request, address);
    }
    return address;
  }

  private hold(address: string): void {
    this.openTotal++;
    this.openPerAddress.set(address, (this.openPerAddress.get(address) ?? 0) + 1);
  }

  private release(address: string): void {
    this.openTotal--;
    const left = (this.openPerAddress.get(address) ?? 1) - 1;
    if (left > 0) {
      this.openPerAddress.set(address, left);
    } else {
      this.openPerAddress.delete(address);
    }
  }

  /** Sockets open or being admitted. */
  openConnections(): number {
    return this.openTotal;
  }
}
