/**
 * The suite's one policy for external programs (ffmpeg, curl, ss, Chromium, Firefox, …): a test
 * that needs one declares it with `needs(…)`, and is skipped — with the reason, printed by the
 * runner — where the program is missing. `.ci/run` installs them all, so in CI nothing is skipped.
 * Never check for a tool inside a test and leave an assertion out silently.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** nginx's program: Debian puts it in /usr/sbin, which a user's PATH may lack. */
export const NGINX = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';

/** How to tell each program is here, and the Debian package that brings it. */
const TOOLS = {
  ffmpeg: { check: () => runs('ffmpeg', ['-version']), apt: 'ffmpeg' },
  curl: { check: () => runs('curl', ['--version']), apt: 'curl' },
  htpasswd: { check: () => runs('htpasswd', ['-nbB', '-C', '4', 'u', 'p']), apt: 'apache2-utils' },
  python3: { check: () => runs('python3', ['--version']), apt: 'python3' },
  openssl: { check: () => runs('openssl', ['version']), apt: 'openssl' },
  ss: { check: () => process.platform === 'linux' && runs('ss', ['-V']), apt: 'iproute2' },
  setpriv: { check: () => runs('setpriv', ['--version']), apt: 'util-linux' },
  chromium: { check: () => existsSync(process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'), apt: 'chromium' },
  firefox: { check: () => existsSync(process.env['FIREFOX_PATH'] ?? '/usr/bin/firefox-esr'), apt: 'firefox-esr' },
  promtool: { check: () => runs('promtool', ['--version']), apt: 'prometheus' },
  nginx: { check: () => runs(NGINX, ['-v']), apt: 'nginx' },
  caddy: { check: () => runs('caddy', ['version']), apt: 'caddy' },
  'systemd-analyze': { check: () => runs('systemd-analyze', ['--version']), apt: 'systemd' },
  'redis-server': { check: () => runs('redis-server', ['--version']), apt: 'redis-server' },
} as const;

export type Tool = keyof typeof TOOLS;

function runs(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const known = new Map<Tool, boolean>();

/** False when every tool is here; otherwise why not (for `test(name, { skip }, fn)`). */
export function missing(...tools: Tool[]): string | false {
  const absent = tools.filter((tool) => {
    if (!known.has(tool)) known.set(tool, TOOLS[tool].check());
    return !known.get(tool);
  });
  return absent.length === 0 ? false : `needs ${absent.map((tool) => `${tool} (apt-get install ${TOOLS[tool].apt})`).join(', ')}`;
}

/** Test options that skip the test, with the reason, where one of `tools` is missing. */
export function needs(...tools: Tool[]): { skip: string | false } {
  return { skip: missing(...tools) };
}
