/**
 * RFC 9112 §3.2: a server MUST answer 400 to a request whose `Host` is invalid. Valid is
 * `uri-host [ ":" port ]` (RFC 3986): a registered name (unreserved, percent-encoded, sub-delims),
 * an IPv4 address, or an IP literal in brackets, and a port of digits up to 65535.
 */
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;
const IP_LITERAL = /^\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]$/;

/** True when `host` is a valid `Host` header value (undefined: no header, which HTTP/1.0 may send). */
export function isValidHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  let name = host;
  const portAt = host.startsWith('[') ? host.indexOf(']:') + 1 : host.lastIndexOf(':');
  if (portAt > 0) {
    const port = host.slice(portAt + 1);
    // An empty port is allowed by the grammar (`host:`); digits otherwise, at most 65535.
    if (!/^\d{0,5}$/.test(port) || (port !== '' && Number(port) > 65535)) return false;
    name = host.slice(0, portAt);
  }
  if (name === '') return false;
  return name.startsWith('[') ? IP_LITERAL.test(name) : REG_NAME.test(name);
}
