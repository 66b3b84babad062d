/**
 * Principals from bearer tokens: `authorization: Bearer <JWT>` call metadata, verified with `jose`
 * (no hand-written crypto) against the issuer's public keys, a JWKS from a file (re-read when it
 * changes, so keys rotate without a restart) or a URL (fetched and cached by jose, re-fetched
 * for an unknown key id). A token must be signed by one of those keys with an asymmetric algorithm,
 * carry `exp` and not be past it, and match the configured issuer and audience. The principal is
 * `User:<claim>` (default claim `sub`). Any failure is UNAUTHENTICATED / AUTHENTICATION_FAILED
 * with the reason (expired, bad signature, wrong audience...), never a fallback to anonymous.
 */
import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { SkeinError } from '../errors.js';

export interface JwtSettings {
  /** Path of a JWKS document (`{"keys":[...]}`) with the issuer's public keys. */
  jwksFile?: string;
  /** URL of the issuer's JWKS (e.g. https://issuer/.well-known/jwks.json). */
  jwksUrl?: string;
  /** Required `iss`. */
  issuer?: string;
  /** Required `aud` (one of the token's audiences). */
  audience?: string;
  /** Claim naming the principal; default `sub`. */
  principalClaim?: string;
  /** Allowed clock skew for exp/nbf, in seconds; default 30. */
  clockToleranceSec?: number;
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const CACHE_MAX = 4096;

export interface TokenPrincipal {
  type: 'User';
  name: string;
  /** The token's expiry, ms since the epoch. */
  expiresAtMs: number;
}

export class JwtVerifier {
  private keys: JWTVerifyGetKey;
  private fileStamp = '';
  private lastFileCheckMs = 0;
  /** Verified tokens until they expire: a client sends the same token on every call. */
  private readonly cache = new Map<string, TokenPrincipal>();

  constructor(
    private readonly settings: JwtSettings,
    private readonly nowMs: () => number = Date.now,
  ) {
    if (!settings.jwksFile && !settings.jwksUrl) throw new Error('JWT verification needs a JWKS file or URL');
    if (settings.jwksFile && settings.jwksUrl) throw new Error('JWT verification takes a JWKS file or a URL, not both');
    this.keys = settings.jwksFile ? this.loadFile() : createRemoteJWKSet(new URL(settings.jwksUrl!));
  }

  private loadFile(): JWTVerifyGetKey {
    const file = this.settings.jwksFile!;
    const st = statSync(file);
    this.fileStamp = `${st.mtimeMs}:${st.size}`;
    return createLocalJWKSet(JSON.parse(readFileSync(file, 'utf8')) as JSONWebKeySet);
  }

  /** Re-reads the JWKS file when it changed (checked at most once a second). */
  private refreshFile(): void {
    if (!this.settings.jwksFile || this.nowMs() - this.lastFileCheckMs < 1000) return;
    this.lastFileCheckMs = this.nowMs();
    try {
      const st = statSync(this.settings.jwksFile);
      if (`${st.mtimeMs}:${st.size}` !== this.fileStamp) {
        this.keys = this.loadFile();
        this.cache.clear(); // a key removed from the set no longer vouches for its tokens
      }
    } catch {
      // A file being replaced: keep the keys we have and look again next time.
    }
  }

  async verify(token: string): Promise<TokenPrincipal> {
    this.refreshFile();
    const cached = this.cache.get(token);
    if (cached && cached.expiresAtMs > this.nowMs()) return cached;
    const claim = this.settings.principalClaim || 'sub';
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.settings.issuer || undefined,
        audience: this.settings.audience || undefined,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', claim],
        clockTolerance: this.settings.clockToleranceSec ?? 30,
        currentDate: new Date(this.nowMs()),
      }));
    } catch (err) {
      throw new SkeinError('AUTHENTICATION_FAILED', `bearer token refused: ${describeJoseError(err)}`, { metadata: { mechanism: 'jwt' } });
    }
    const name = payload[claim];
    if (typeof name !== 'string' || name === '' || name.length > 255 || /\s/.test(name)) {
      throw new SkeinError('AUTHENTICATION_FAILED', `bearer token refused: claim "${claim}" is not a usable principal name`, {
        metadata: { mechanism: 'jwt' },
      });
    }
    const principal: TokenPrincipal = { type: 'User', name, expiresAtMs: Number(payload.exp) * 1000 };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(token, principal);
    return principal;
  }
}

/** A short, safe description of why jose refused a token (no token contents). */
function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature does not verify against the issuer keys';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no issuer key matches the token (unknown kid or wrong key)';
  if (err instanceof errors.JWTClaimValidationFailed)
    return `claim ${err.claim} ${err.reason === 'check_failed' ? 'does not match' : err.reason}: ${err.message}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'signing algorithm not allowed (asymmetric keys only)';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed token';
  if (err instanceof errors.JOSEError) return err.code;
  return 'could not be verified';
}

/** The token of an `authorization: Bearer <token>` value, or undefined for other schemes. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return m?.[1];
}
