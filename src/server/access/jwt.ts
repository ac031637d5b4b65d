/**
 * JSON Web Tokens as bearer tokens, for users who already issue them (an identity provider, a
 * dashboard's backend): verified with `jose` (HS256 with a shared secret from a file; RS256/ES256
 * with the public keys of a JWKS file or URL), their `exp`/`nbf` (and `iss`/`aud` when set)
 * checked, and a claim naming the streams they may read (decision 0016).
 */
import { readFile } from 'node:fs/promises';
import { ServerPushError } from '../../errors.ts';
import { secretBytes } from './signed-link.ts';

/** The JWT settings (`jwt` in the config file). */
export interface JwtOptions {
  /** Algorithms accepted. @default ['HS256', 'RS256', 'ES256'] of those a key is given for */
  algorithms?: readonly ('HS256' | 'RS256' | 'ES256')[];
  /** HS256: a file holding the shared secret (at least 32 bytes). */
  secretFile?: string;
  /** RS256/ES256: a file holding a JWKS (`{"keys": […]}`) of public keys. */
  jwksFile?: string;
  /** RS256/ES256: the URL of a JWKS (fetched when needed, cached, refetched for an unknown `kid`). */
  jwksUrl?: string;
  /** The `iss` a token must have. @default not checked */
  issuer?: string;
  /** The `aud` a token must have. @default not checked */
  audience?: string;
  /** The claim naming the streams a token may read (a list of names, or `"*"`). @default 'streams' */
  streamsClaim?: string;
}

/** What a verified JWT grants. */
export interface JwtGrant {
  subject: string;
  streams: readonly string[];
  /** From the `scope` claim (space-separated, RFC 8693) or a `scopes` list. */
  scopes: readonly string[];
}

export type JwtCheck = { ok: true; grant: JwtGrant } | { ok: false; reason: 'invalid' | 'expired' };

type Jose = typeof import('jose');
type Key = Parameters<Jose['jwtVerify']>[1];

const ALL = ['HS256', 'RS256', 'ES256'] as const;

/** True when `value` has the shape of a JWS compact serialization (three base64url parts). */
export function looksLikeJwt(value: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value);
}

/** A JWT verifier. Throws `SP_ERR_CONFIG` for settings that cannot work. */
export async function createJwtVerifier(options: JwtOptions): Promise<(token: string) => Promise<JwtCheck>> {
  const jose: Jose = await import('jose');
  const keys: Array<{ algorithms: string[]; key: Key }> = [];
  const wanted = options.algorithms ?? ALL;
  for (const algorithm of wanted) if (!(ALL as readonly string[]).includes(algorithm)) throw new ServerPushError('SP_ERR_CONFIG', `jwt.algorithms: ${JSON.stringify(algorithm)} is not one of ${ALL.join(', ')}`);
  if (options.secretFile !== undefined) {
    if (!wanted.includes('HS256')) throw new ServerPushError('SP_ERR_CONFIG', 'jwt.secretFile is for HS256, which jwt.algorithms leaves out');
    let secret: Buffer;
    try {
      secret = await readFile(options.secretFile);
    } catch (error) {
      throw new ServerPushError('SP_ERR_CONFIG', `jwt.secretFile ${options.secretFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
    }
    secret = secretBytes(secret);
    if (secret.length < 32) throw new ServerPushError('SP_ERR_CONFIG', `jwt.secretFile ${options.secretFile}: HS256 needs a secret of at least 32 bytes`);
    keys.push({ algorithms: ['HS256'], key: new Uint8Array(secret) });
  }
  const asymmetric = wanted.filter((algorithm) => algorithm !== 'HS256');
  if (options.jwksFile !== undefined) {
    let jwks: Parameters<Jose['createLocalJWKSet']>[0];
    try {
      jwks = JSON.parse(await readFile(options.jwksFile, 'utf8')) as typeof jwks;
    } catch (error) {
      throw new ServerPushError('SP_ERR_CONFIG', `jwt.jwksFile ${options.jwksFile}: cannot read it as JSON (${(error as Error).message})`, { cause: error });
    }
    if (!jwks || !Array.isArray(jwks.keys)) throw new ServerPushError('SP_ERR_CONFIG', `jwt.jwksFile ${options.jwksFile}: must hold {"keys": [...]}`);
    keys.push({ algorithms: asymmetric, key: jose.createLocalJWKSet(jwks) as unknown as Key });
  }
  if (options.jwksUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(options.jwksUrl);
    } catch {
      throw new ServerPushError('SP_ERR_CONFIG', `jwt.jwksUrl: ${JSON.stringify(options.jwksUrl)} is not a URL`);
    }
    keys.push({ algorithms: asymmetric, key: jose.createRemoteJWKSet(url) as unknown as Key });
  }
  if (keys.length === 0) throw new ServerPushError('SP_ERR_CONFIG', 'jwt needs a key: secretFile (HS256), jwksFile or jwksUrl (RS256, ES256)');
  const claim = options.streamsClaim ?? 'streams';
  return async (token) => {
    let expired = false;
    for (const { algorithms, key } of keys) {
      try {
        const { payload } = await jose.jwtVerify(token, key, {
          algorithms,
          ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
          ...(options.audience !== undefined ? { audience: options.audience } : {}),
        });
        const named = payload[claim];
        const streams = named === '*' ? ['*'] : Array.isArray(named) ? named.filter((name): name is string => typeof name === 'string') : [];
        const scopeText = payload['scope'];
        const scopes = typeof scopeText === 'string' ? scopeText.split(' ').filter(Boolean) : Array.isArray(payload['scopes']) ? (payload['scopes'] as unknown[]).filter((s): s is string => typeof s === 'string') : [];
        return { ok: true, grant: { subject: typeof payload.sub === 'string' ? payload.sub : 'jwt', streams, scopes } };
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_JWT_EXPIRED') expired = true;
      }
    }
    return { ok: false, reason: expired ? 'expired' : 'invalid' };
  };
}
