/**
 * Bearer tokens for programs (`Authorization: Bearer …`): each has a name, scopes, and is stored
 * only as the SHA-256 of the token (hex), so the config file does not hold the secret itself.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ServerPushError } from '../../errors.ts';
import { SCOPE_NAME } from './signed-link.ts';

/** One token as the config holds it. */
export interface TokenEntry {
  /** Names the token in logs and in `read` lists (`token:NAME`). */
  name: string;
  /** SHA-256 of the token, 64 hex digits (`serverpush token` prints it). */
  sha256: string;
  /** Scopes: a stream whose `read` names `scope:NAME` admits the token. @default [] */
  scopes?: string[];
}

export const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** The SHA-256 of a token, as stored (hex). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token (256 bits, base64url) and its config entry. */
export function createToken(name: string, scopes: string[] = []): { token: string; entry: TokenEntry } {
  const token = `sp_${randomBytes(32).toString('base64url')}`;
  return { token, entry: { name, sha256: hashToken(token), scopes } };
}

/** Checks token entries (from a config or a tokens file). Throws `SP_ERR_CONFIG` naming the entry. */
export function checkTokens(raw: unknown, where: string): TokenEntry[] {
  if (!Array.isArray(raw)) throw new ServerPushError('SP_ERR_CONFIG', `${where}: must be a list of {"name", "sha256", "scopes"}`);
  const names = new Set<string>();
  return raw.map((item: unknown, i) => {
    const at = `${where}[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ServerPushError('SP_ERR_CONFIG', `${at}: must be an object`);
    const r = item as Record<string, unknown>;
    for (const key of Object.keys(r)) if (!['name', 'sha256', 'scopes'].includes(key)) throw new ServerPushError('SP_ERR_CONFIG', `${at}: unknown key ${JSON.stringify(key)}${key === 'token' ? ' (store the token\'s sha256, never the token)' : ''}`);
    if (typeof r['name'] !== 'string' || !TOKEN_NAME.test(r['name'])) throw new ServerPushError('SP_ERR_CONFIG', `${at}: name must be 1 to 64 of A-Z a-z 0-9 . _ -`);
    if (names.has(r['name'])) throw new ServerPushError('SP_ERR_CONFIG', `${at}: the name ${JSON.stringify(r['name'])} is used twice`);
    names.add(r['name']);
    if (typeof r['sha256'] !== 'string' || !/^[0-9a-fA-F]{64}$/.test(r['sha256'])) throw new ServerPushError('SP_ERR_CONFIG', `${at}: sha256 must be 64 hex digits (the SHA-256 of the token)`);
    const scopes = r['scopes'] ?? [];
    if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || !SCOPE_NAME.test(s))) throw new ServerPushError('SP_ERR_CONFIG', `${at}: scopes must be a list of names (A-Z a-z 0-9 _ -)`);
    return { name: r['name'], sha256: r['sha256'].toLowerCase(), scopes: scopes as string[] };
  });
}

/** Reads a tokens file: a JSON list of token entries. */
export async function readTokensFile(file: string): Promise<TokenEntry[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new ServerPushError('SP_ERR_CONFIG', `tokens file ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `cannot read it (${(error as Error).message})`}`, { cause: error });
  }
  return checkTokens(raw, `tokens file ${file}`);
}

/** Tokens by hash. The lookup is by the SHA-256 of what the client sent, so its timing says nothing of the stored tokens. */
export class TokenSet {
  private readonly byHash = new Map<string, TokenEntry>();

  constructor(entries: readonly TokenEntry[]) {
    for (const entry of entries) this.byHash.set(entry.sha256.toLowerCase(), entry);
  }

  get size(): number {
    return this.byHash.size;
  }

  names(): string[] {
    return [...this.byHash.values()].map((entry) => entry.name);
  }

  find(token: string): TokenEntry | undefined {
    return this.byHash.get(hashToken(token));
  }
}
