/**
 * Bearer tokens for every call a client makes: `authorization: Bearer <token>` call metadata,
 * which the services verify as a JWT (docs/security.md). Attached by a client interceptor rather
 * than call credentials because grpc-js refuses call credentials on plaintext channels (a token
 * over plaintext is still useful on a trusted network, or behind a TLS-terminating proxy); over TLS
 * the interceptor does the same as call credentials would.
 *
 * A token comes from a string, a function (e.g. a refreshing token provider), or a file that is
 * read again when it changes (checked at most once a second), so a sidecar can rotate it on disk.
 */
import { readFileSync, statSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

/** A token as given, or how to get the current one. */
export type TokenSource = string | (() => string);

export interface TokenOptions {
  /** The token (or a function returning the current one). */
  token?: TokenSource;
  /** A file holding the token (surrounding whitespace ignored), re-read when it changes. */
  tokenFile?: string;
}

/** Reads a token file, again when its size or mtime changes (checked at most once a second). */
export function tokenFromFile(file: string, nowMs: () => number = Date.now): () => string {
  let stamp = '';
  let token = '';
  let checkedAtMs = -Infinity;
  return () => {
    if (nowMs() - checkedAtMs < 1000 && token !== '') return token;
    checkedAtMs = nowMs();
    const st = statSync(file);
    const now = `${st.mtimeMs}:${st.size}`;
    if (now !== stamp) {
      const read = readFileSync(file, 'utf8').trim();
      if (read === '') throw new Error(`token file ${file} is empty`);
      token = read;
      stamp = now;
    }
    return token;
  };
}

/** The token source of the options (a token wins over a file), or undefined for none. */
export function tokenSource(options: TokenOptions): (() => string) | undefined {
  const { token, tokenFile } = options;
  if (typeof token === 'function') return token;
  if (typeof token === 'string' && token !== '') {
    if (/\s/.test(token)) throw new Error('a bearer token has no whitespace (pass the token itself, not "Bearer <token>")');
    return () => token;
  }
  if (tokenFile) return tokenFromFile(tokenFile);
  return undefined;
}

/** A client interceptor adding `authorization: Bearer <token>` to every call's metadata. */
export function bearerTokenInterceptor(source: () => string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${source()}`);
        next(metadata, listener);
      },
    });
}

/** A client interceptor naming the client (`skein-client-id`) on every call, for client-id quotas. */
export function clientIdInterceptor(clientId: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('skein-client-id', clientId);
        next(metadata, listener);
      },
    });
}
