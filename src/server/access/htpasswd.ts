/**
 * Users with hashed passwords from an Apache/nginx htpasswd file (`user:$2y$10$…`, one a line).
 * Only bcrypt is accepted: MD5 (`$apr1$`), SHA-1 (`{SHA}`), crypt(3) and plain text are refused at
 * load, since any of them can be cracked at billions of guesses a second.
 */
import { readFile, rename, open, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** bcryptjs, loaded when `serverpush passwd` first needs it (the server checks passwords in a worker thread, bcrypt-pool.ts). */
type Bcrypt = typeof import('bcryptjs').default;
let bcryptModule: Promise<Bcrypt> | undefined;
function loadBcrypt(): Promise<Bcrypt> {
  bcryptModule ??= import('bcryptjs').then((module) => module.default);
  return bcryptModule;
}
import { ServerPushError } from '../../errors.ts';
import { bcryptPool, type BcryptPool } from './bcrypt-pool.ts';

/** The bcrypt variants accepted (`$2y$` is Apache's name for `$2b$`). */
const BCRYPT = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

/** A user name as htpasswd allows it: no colon, no control characters, at most 255 bytes. */
export const USER_NAME = /^[^:\x00-\x1f\x7f]{1,255}$/;

/** The bcrypt cost `serverpush passwd` uses (about 50–100 ms a check on a small server). */
export const DEFAULT_BCRYPT_COST = 10;

/** The users of an htpasswd file. */
export class Htpasswd {
  readonly file: string;
  private readonly hashes: Map<string, string>;
  /** A hash of a random password at the file's cost, checked for unknown users so that they take as long as known ones. */
  private readonly dummy: string;
  private readonly bcrypt: BcryptPool;

  private constructor(file: string, hashes: Map<string, string>, dummy: string, bcrypt: BcryptPool) {
    this.file = file;
    this.hashes = hashes;
    this.dummy = dummy;
    this.bcrypt = bcrypt;
  }

  /** Reads `file`. Throws `SP_ERR_CONFIG` naming the line of a hash that is not bcrypt (never the hash). */
  static async load(file: string): Promise<Htpasswd> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ServerPushError('SP_ERR_CONFIG', `htpasswd ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
    }
    const hashes = parseHtpasswd(text, file);
    const costs = [...hashes.values()].map((hash) => Number(BCRYPT.exec(hash)![1]));
    const cost = costs.length === 0 ? DEFAULT_BCRYPT_COST : Math.max(...costs);
    const bcrypt = bcryptPool();
    const dummy = await bcrypt.hash(randomBytes(16).toString('base64'), cost);
    return new Htpasswd(file, hashes, dummy, bcrypt);
  }

  get size(): number {
    return this.hashes.size;
  }

  has(user: string): boolean {
    return this.hashes.has(user);
  }

  /**
   * True when `password` is `user`'s. An unknown user costs one bcrypt check too (of a dummy
   * hash), so that a wrong user name and a wrong password take the same time. The check runs in
   * a worker thread; rejects with `SP_ERR_AUTH_BUSY` when too many checks wait already.
   */
  async verify(user: string, password: string): Promise<boolean> {
    const hash = this.hashes.get(user);
    const ok = await this.bcrypt.compare(password, hash ?? this.dummy);
    return ok && hash !== undefined;
  }
}

/** The user → hash map of an htpasswd file's text. Throws `SP_ERR_CONFIG` naming the line at fault. */
export function parseHtpasswd(text: string, file: string): Map<string, string> {
  const hashes = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const where = `htpasswd ${file} line ${index + 1}`;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ServerPushError('SP_ERR_CONFIG', `${where}: not user:hash`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1).trim();
    if (!USER_NAME.test(user)) throw new ServerPushError('SP_ERR_CONFIG', `${where}: not a valid user name`);
    if (!BCRYPT.test(hash)) {
      throw new ServerPushError('SP_ERR_CONFIG', `${where} (user ${JSON.stringify(user)}): only bcrypt hashes ($2y$, $2b$, $2a$) are accepted; set the password again with \`serverpush passwd\` or \`htpasswd -B\``);
    }
    if (hashes.has(user)) throw new ServerPushError('SP_ERR_CONFIG', `${where}: user ${JSON.stringify(user)} appears twice`);
    hashes.set(user, hash);
  });
  return hashes;
}

/**
 * Adds or changes `user` in `file` (made when missing), or with `password` undefined removes it.
 * Other lines (users, comments) are kept. Written atomically (a temporary file renamed over it),
 * mode 0600. Returns what happened.
 */
export async function updateHtpasswd(file: string, user: string, password: string | undefined, cost = DEFAULT_BCRYPT_COST): Promise<'added' | 'changed' | 'deleted'> {
  if (!USER_NAME.test(user)) throw new ServerPushError('SP_ERR_INVALID_OPTION', 'a user name has 1 to 255 characters, no colon and no control characters');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ServerPushError('SP_ERR_CANNOT_WRITE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
    if (password === undefined) throw new ServerPushError('SP_ERR_INVALID_OPTION', `${file} does not exist: there is no user to delete`);
  }
  parseHtpasswd(text, file); // refuse to rewrite a file that would not load
  const lines = text === '' ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/);
  const at = lines.findIndex((line) => line.slice(0, line.indexOf(':')) === user && line.includes(':'));
  let outcome: 'added' | 'changed' | 'deleted';
  if (password === undefined) {
    if (at === -1) throw new ServerPushError('SP_ERR_INVALID_OPTION', `no user ${JSON.stringify(user)} in ${file}`);
    lines.splice(at, 1);
    outcome = 'deleted';
  } else {
    const entry = `${user}:${await (await loadBcrypt()).hash(password, cost)}`;
    if (at === -1) lines.push(entry);
    else lines[at] = entry;
    outcome = at === -1 ? 'added' : 'changed';
  }
  await writeAtomically(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  return outcome;
}

/** Writes `text` to a temporary file beside `file` (mode 0600), flushes it, and renames it over `file`. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw new ServerPushError('SP_ERR_CANNOT_WRITE', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}

