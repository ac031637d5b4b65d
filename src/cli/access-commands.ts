/**
 * The access commands: `serverpush passwd FILE USER` (users of an htpasswd file), `serverpush sign
 * URL` (signed links) and `serverpush token NAME` (bearer tokens). No secret is ever taken from
 * argv, where `ps` shows it: passwords come from the terminal (echo off) or standard input, the
 * link secret from a file.
 */
import { isServerPushError, ServerPushError } from '../errors.ts';
import { parseOptions } from './options.ts';
import { updateHtpasswd, DEFAULT_BCRYPT_COST } from '../server/access/htpasswd.ts';
import { parseDuration, readLinkSecret, signLink, SCOPE_NAME } from '../server/access/signed-link.ts';
import { createToken, TOKEN_NAME } from '../server/access/tokens.ts';
import { loadConfig } from './config.ts';

export const PASSWD_USAGE = `Usage: serverpush passwd FILE USER [--delete] [--cost N]

Adds USER to the htpasswd FILE (made when missing, mode 0600) or changes their password; the
password is read from the terminal (not shown) or, when standard input is not a terminal, from
its first line. --delete removes USER. Hashes are bcrypt (cost ${DEFAULT_BCRYPT_COST} by default, 4 to 15).
`;

export const SIGN_USAGE = `Usage: serverpush sign URL --expires DURATION (--link-secret-file FILE | --config FILE)
                       [--scope NAME] [--base-path PATH]

Prints URL with ?token=… added: a link to that stream or snapshot that works without a password
until it expires (90s, 15m, 1h, 7d), for an <img> on another site. The secret is the server's
--link-secret-file (or the config file's linkSecretFile and basePath). A link cannot be moved to
another path or extended; with --scope, the stream must admit "scope:NAME" too.
`;

export const TOKEN_USAGE = `Usage: serverpush token NAME [--scope NAME]...

Makes a bearer token for a program (Authorization: Bearer …). Prints the token once on the first
line, then the entry to add to the config file's "tokens" (it holds only the token's SHA-256).
`;

const EXIT_USAGE = 2;
const EXIT_RUNTIME = 1;

function fail(error: unknown, usage: string): number {
  if (!isServerPushError(error)) throw error;
  const code = error.code === 'SP_ERR_INVALID_OPTION' || error.code === 'SP_ERR_CONFIG' ? EXIT_USAGE : EXIT_RUNTIME;
  process.stderr.write(`serverpush: ${error.message} (${error.code})\n${code === EXIT_USAGE ? usage.split('\n')[0] + '\n' : ''}`);
  return code;
}

/** Reads a password: from the terminal with echo off (asked twice), or the first line of standard input. */
async function readPassword(user: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.includes('\n')) break;
    }
    return text.split(/\r?\n/)[0]!;
  }
  const ask = (prompt: string) => new Promise<string>((resolve, reject) => {
    // Echo off before the prompt shows, so that what is typed at once is not echoed either.
    stdin.setRawMode(true);
    process.stderr.write(prompt);
    stdin.resume();
    stdin.setEncoding('utf8');
    let typed = '';
    const done = (error?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003' || char === '\u0004') return done(new Error('cancelled'));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    stdin.on('data', onData);
  });
  const first = await ask(`New password for ${user}: `);
  const second = await ask('Again: ');
  if (first !== second) throw Object.assign(new Error('the passwords differ'), { differ: true });
  return first;
}

/** `serverpush passwd FILE USER [--delete]`. Resolves the exit code. */
export async function runPasswd(argv: readonly string[]): Promise<number> {
  try {
    const { values, positionals } = parseOptions(argv, { delete: { type: 'boolean' }, cost: { type: 'string', value: 'N' }, help: { type: 'boolean', short: 'h' } });
    if (values['help']) return void process.stdout.write(PASSWD_USAGE), 0;
    if (positionals.length !== 2) return fail(new ServerPushError('SP_ERR_INVALID_OPTION', 'passwd takes FILE and USER (the password is asked for, never given as an argument)'), PASSWD_USAGE);
    const [file, user] = positionals as [string, string];
    const cost = values['cost'] === undefined ? DEFAULT_BCRYPT_COST : Number(values['cost']);
    if (!Number.isInteger(cost) || cost < 4 || cost > 15) return fail(new ServerPushError('SP_ERR_INVALID_OPTION', `--cost must be an integer from 4 to 15, got ${JSON.stringify(values['cost'])}`), PASSWD_USAGE);
    let password: string | undefined;
    if (!values['delete']) {
      try {
        password = await readPassword(user);
      } catch (error) {
        process.stderr.write(`serverpush: ${(error as Error).message}; nothing changed\n`);
        return EXIT_RUNTIME;
      }
      if (password === '') return fail(new ServerPushError('SP_ERR_INVALID_OPTION', 'the password is empty'), PASSWD_USAGE);
    }
    const outcome = await updateHtpasswd(file, user, password, cost);
    process.stderr.write(`serverpush: user ${JSON.stringify(user)} ${outcome} in ${file}\n`);
    return 0;
  } catch (error) {
    return fail(error, PASSWD_USAGE);
  }
}

/** `serverpush sign URL --expires D …`. Resolves the exit code. */
export async function runSign(argv: readonly string[]): Promise<number> {
  try {
    const { values, positionals } = parseOptions(argv, {
      expires: { type: 'string', value: 'DURATION' },
      scope: { type: 'string', value: 'NAME' },
      'link-secret-file': { type: 'string', value: 'FILE' },
      config: { type: 'string', value: 'FILE' },
      'base-path': { type: 'string', value: 'PATH' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values['help']) return void process.stdout.write(SIGN_USAGE), 0;
    if (positionals.length !== 1) throw new ServerPushError('SP_ERR_INVALID_OPTION', 'sign takes one URL');
    if (values['expires'] === undefined) throw new ServerPushError('SP_ERR_INVALID_OPTION', 'sign needs --expires (e.g. 1h): a link that never expires cannot be taken back');
    const config = values['config'] === undefined ? undefined : await loadConfig(values['config'] as string);
    const secretFile = (values['link-secret-file'] as string | undefined) ?? config?.access?.linkSecretFile;
    if (secretFile === undefined) throw new ServerPushError('SP_ERR_INVALID_OPTION', 'sign needs the server\'s secret: --link-secret-file FILE, or --config FILE with linkSecretFile');
    const scope = values['scope'] as string | undefined;
    if (scope !== undefined && !SCOPE_NAME.test(scope)) throw new ServerPushError('SP_ERR_INVALID_OPTION', '--scope must be 1 to 64 of A-Z a-z 0-9 _ -');
    const basePath = (values['base-path'] as string | undefined) ?? config?.basePath;
    const link = signLink(positionals[0]!, {
      secret: await readLinkSecret(secretFile),
      expiresInSeconds: parseDuration(values['expires'] as string),
      ...(scope !== undefined ? { scope } : {}),
      ...(basePath !== undefined ? { basePath } : {}),
    });
    process.stdout.write(`${link}\n`);
    return 0;
  } catch (error) {
    return fail(error, SIGN_USAGE);
  }
}

/** `serverpush token NAME [--scope S]…`. Resolves the exit code. */
export async function runToken(argv: readonly string[]): Promise<number> {
  try {
    const { values, positionals } = parseOptions(argv, { scope: { type: 'string', multiple: true, value: 'NAME' }, help: { type: 'boolean', short: 'h' } });
    if (values['help']) return void process.stdout.write(TOKEN_USAGE), 0;
    if (positionals.length !== 1 || !TOKEN_NAME.test(positionals[0]!)) throw new ServerPushError('SP_ERR_INVALID_OPTION', 'token takes one NAME (1 to 64 of A-Z a-z 0-9 . _ -)');
    const scopes = (values['scope'] as string[] | undefined) ?? [];
    for (const scope of scopes) if (!SCOPE_NAME.test(scope)) throw new ServerPushError('SP_ERR_INVALID_OPTION', `--scope ${JSON.stringify(scope)}: 1 to 64 of A-Z a-z 0-9 _ -`);
    const { token, entry } = createToken(positionals[0]!, scopes);
    process.stdout.write(`${token}\n${JSON.stringify(entry)}\n`);
    return 0;
  } catch (error) {
    return fail(error, TOKEN_USAGE);
  }
}
