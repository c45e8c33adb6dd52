import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { ConfigValidationError } from '../config/environment.js';
import { InvalidTokenError } from './invalid-token.error.js';
import { parseClaims, type TokenClaims } from './token-claims.js';

export interface JwtSettings {
  secret?: string;
  publicKey?: string;
  jwksFile?: string;
  issuer?: string;
  audience?: string;
}

/** Longer tokens are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 8192;
/** Allowed clock skew between the token issuer and us, for `exp`, `nbf` and `iat`. */
export const CLOCK_TOLERANCE_S = 5;
const MIN_RSA_BITS = 2048;
const ASYMMETRIC_ALGORITHMS = ['RS256', 'ES256'];

type VerificationKey = Uint8Array | KeyObject | JWTVerifyGetKey;

/**
 * Verifies tokens against the one key source configured (JWT_SECRET, JWT_PUBLIC_KEY or
 * JWT_JWKS_FILE). Keys are loaded when it is built, at boot: a bad key stops the boot with a
 * ConfigValidationError naming the variable. The accepted algorithms are pinned to the key.
 */
export class JwtVerifier {
  private constructor(
    private readonly key: VerificationKey,
    readonly algorithms: readonly string[],
    private readonly settings: JwtSettings,
  ) {}

  static fromSettings(settings: JwtSettings): JwtVerifier {
    if (settings.secret !== undefined) {
      return new JwtVerifier(new TextEncoder().encode(settings.secret), ['HS256'], settings);
    }
    if (settings.publicKey !== undefined) {
      const { key, algorithm } = loadPublicKey(settings.publicKey);
      return new JwtVerifier(key, [algorithm], settings);
    }
    if (settings.jwksFile !== undefined) {
      const { keySet, algorithms } = loadKeySet(settings.jwksFile);
      return new JwtVerifier(keySet, algorithms, settings);
    }
    throw new ConfigValidationError([
      'AUTH_MODE: jwt needs one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_FILE',
    ]);
  }

  /** The token's claims; throws an InvalidTokenError saying why it was refused. */
  async verify(token: string): Promise<TokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new InvalidTokenError(`token longer than ${MAX_TOKEN_LENGTH} characters`);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: [...this.algorithms],
        clockTolerance: CLOCK_TOLERANCE_S,
        ...(this.settings.issuer !== undefined ? { issuer: this.settings.issuer } : {}),
        ...(this.settings.audience !== undefined ? { audience: this.settings.audience } : {}),
      }));
    } catch (error) {
      throw new InvalidTokenError(reasonOf(error));
    }
    return parseClaims(payload);
  }
}

/** jose's messages name the check that failed and never quote the token. */
function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) {
    return 'token expired';
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return 'no key in JWT_JWKS_FILE matches the token (kid, alg)';
  }
  if (error instanceof errors.JOSEError) {
    return error.message;
  }
  return 'malformed token';
}

function loadPublicKey(pem: string): { key: KeyObject; algorithm: string } {
  const problem = (reason: string) => new ConfigValidationError([`JWT_PUBLIC_KEY: ${reason}`]);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw problem('is a private key; give the public key (PEM SPKI, "BEGIN PUBLIC KEY")');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw problem(`not a PEM public key (${messageOf(error)})`);
  }
  try {
    return { key, algorithm: algorithmOf(key) };
  } catch (error) {
    throw problem(messageOf(error));
  }
}

/** Why an RSA key is too short to trust (its size, never its value); undefined when it is not. */
function shortRsaKeyProblem(key: KeyObject): string | undefined {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits >= MIN_RSA_BITS) {
    return undefined;
  }
  return `an RSA key needs at least ${MIN_RSA_BITS} bits (this one has ${bits})`;
}

/** RS256 for an RSA key, ES256 for a P-256 key: a token cannot pick another algorithm. */
function algorithmOf(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const short = shortRsaKeyProblem(key);
    if (short !== undefined) {
      throw new Error(short);
    }
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') {
    return 'ES256';
  }
  const kind = [key.asymmetricKeyType, details.namedCurve].filter(Boolean).join(' ');
  throw new Error(`a ${kind} key is not supported; use an RSA key (RS256) or a P-256 key (ES256)`);
}

function loadKeySet(file: string): { keySet: JWTVerifyGetKey; algorithms: string[] } {
  const problem = (reason: string) => new ConfigValidationError([`JWT_JWKS_FILE: ${reason}`]);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw problem(`cannot read ${file} (${messageOf(error)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: key material stays out of logs.
    throw problem(`${file} is not valid JSON`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw problem(`${file} is not a JWKS: it needs a non-empty "keys" array`);
  }
  const algorithms = new Set(ASYMMETRIC_ALGORITHMS);
  keys.forEach((jwk: unknown, index) => {
    const declared = checkJwk(jwk, `key ${index}`, problem);
    if (declared !== undefined) {
      algorithms.add(declared);
    }
  });
  let keySet: JWTVerifyGetKey;
  try {
    keySet = createLocalJWKSet(parsed as JSONWebKeySet);
  } catch (error) {
    throw problem(`${file} is not a JWKS (${messageOf(error)})`);
  }
  return { keySet, algorithms: [...algorithms] };
}

/** A public, asymmetric, parseable key (RSA: 2048 bits or more); returns the `alg` it declares. */
function checkJwk(
  jwk: unknown,
  name: string,
  problem: (reason: string) => ConfigValidationError,
): string | undefined {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    throw problem(`${name} is not a JSON object`);
  }
  const { kty, alg, d } = jwk as JWK;
  const label = typeof (jwk as JWK).kid === 'string' ? `${name} (kid ${(jwk as JWK).kid})` : name;
  if (kty === 'oct') {
    throw problem(`${label} is a secret (kty oct); a JWKS file holds public keys only`);
  }
  if (d !== undefined) {
    throw problem(`${label} is a private key; a JWKS file holds public keys only`);
  }
  if (alg !== undefined && (typeof alg !== 'string' || /^HS/.test(alg) || alg === 'none')) {
    throw problem(`${label} declares alg ${JSON.stringify(alg)}; only asymmetric algorithms`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' });
  } catch (error) {
    throw problem(`${label} is not a valid public key (${messageOf(error)})`);
  }
  // As for JWT_PUBLIC_KEY: else it loads, and every token signed with it fails as malformed.
  const short = shortRsaKeyProblem(key);
  if (short !== undefined) {
    throw problem(`${label}: ${short}`);
  }
  return alg;
}

type JsonWebKeyInput = Extract<Parameters<typeof createPublicKey>[0], { format: 'jwk' }>;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
