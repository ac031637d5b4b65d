import { isSecretParameter, REDACTED } from '../../redact.ts';

/** A request's path and query as it may be logged: the values of `token=` and other secret parameters shown as `***`. */
export function redactTarget(path: string, query: URLSearchParams): string {
  const shown = [...query].map(([name, value]) => `${encodeURIComponent(name)}=${isSecretParameter(name) ? REDACTED : encodeURIComponent(value)}`);
  return shown.length === 0 ? path : `${path}?${shown.join('&')}`;
}

/** A raw request target (`req.url`) as it may be logged. */
export function redactRequestUrl(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : redactTarget(url.slice(0, q), new URLSearchParams(url.slice(q + 1)));
}
