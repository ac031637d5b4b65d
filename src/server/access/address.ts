/**
 * Client addresses: CIDR lists (IPv4, IPv6, IPv4-mapped IPv6) and the client's address behind
 * trusted reverse proxies (`X-Forwarded-For`, RFC 7239 `Forwarded`).
 */
import { BlockList, isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { ServerPushError } from '../../errors.ts';

/** `::ffff:192.0.2.1` → `192.0.2.1`; other addresses as they are (lower case); undefined if not an address. */
export function normalizeAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  let text = address.trim().toLowerCase();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (mapped && isIP(mapped[1]!) === 4) return mapped[1]!;
  return isIP(text) === 0 ? undefined : text;
}

/** A list of addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`). */
export class AddressList {
  readonly entries: readonly string[];
  private readonly list = new BlockList();

  /** Throws `SP_ERR_CONFIG` (naming `what`) for an entry that is not an address or a CIDR range. */
  constructor(entries: readonly string[], what: string) {
    this.entries = entries;
    for (const entry of entries) {
      const match = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry.trim());
      const address = match ? normalizeAddress(match[1]) : undefined;
      const family = address === undefined ? 0 : isIP(address);
      const bits = match?.[2] === undefined ? undefined : Number(match[2]);
      // A mapped address with a prefix (::ffff:10.0.0.0/104) is an IPv4 range of prefix - 96.
      const mappedPrefix = family === 4 && /:/.test(match![1]!) && bits !== undefined ? bits - 96 : bits;
      const max = family === 4 ? 32 : 128;
      if (family === 0 || (mappedPrefix !== undefined && (mappedPrefix < 0 || mappedPrefix > max))) {
        throw new ServerPushError('SP_ERR_CONFIG', `${what}: ${JSON.stringify(entry)} is not an address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32`);
      }
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (mappedPrefix === undefined) this.list.addAddress(address!, type);
      else this.list.addSubnet(address!, mappedPrefix, type);
    }
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** True when `address` (any form, IPv4-mapped included) is in the list. */
  has(address: string | undefined): boolean {
    const normalized = normalizeAddress(address);
    if (normalized === undefined || this.empty) return false;
    return this.list.check(normalized, isIP(normalized) === 4 ? 'ipv4' : 'ipv6');
  }
}

/** An allow list and a deny list: deny wins; a non-empty allow list admits only its addresses. */
export interface AddressRule {
  allow: AddressList;
  deny: AddressList;
}

/** True when `rule` admits `address` (an unknown address is admitted only when there is no allow list). */
export function admitsAddress(rule: AddressRule, address: string | undefined): boolean {
  if (rule.deny.has(address)) return false;
  return rule.allow.empty || rule.allow.has(address);
}

/** One hop of `Forwarded: for=…` (RFC 7239 §6): `192.0.2.1`, `"[2001:db8::1]:4711"`, `"192.0.2.1:80"`. */
function forwardedFor(value: string): string | undefined {
  let text = value.trim();
  if (text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1);
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return normalizeAddress(bracketed[1]);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?$/.exec(text);
  return normalizeAddress(v4 ? v4[1] : text);
}

/** The hops a request passed through, nearest last, as the proxies said: `Forwarded` if present, else `X-Forwarded-For`. */
function forwardedHops(headers: IncomingHttpHeaders): Array<string | undefined> | undefined {
  const forwarded = headers['forwarded'];
  if (forwarded !== undefined) {
    const hops: Array<string | undefined> = [];
    for (const element of forwarded.split(',')) {
      const pair = element.split(';').map((p) => p.trim()).find((p) => /^for=/i.test(p));
      hops.push(pair === undefined ? undefined : forwardedFor(pair.slice(4)));
    }
    return hops;
  }
  const xff = headers['x-forwarded-for'];
  if (xff === undefined) return undefined;
  const text = Array.isArray(xff) ? xff.join(',') : xff;
  return text.split(',').map((hop) => forwardedFor(hop));
}

/**
 * The client's address: the connection's peer, or — only when that peer is one of `trusted` — the
 * rightmost hop of `Forwarded`/`X-Forwarded-For` that is not itself a trusted proxy. A hop that is
 * not an address (`unknown`, garbage) stops the walk at the last trusted proxy.
 */
export function clientAddress(peer: string | undefined, headers: IncomingHttpHeaders, trusted: AddressList): string | undefined {
  let client = normalizeAddress(peer) ?? peer;
  if (trusted.empty || !trusted.has(client)) return client;
  const hops = forwardedHops(headers);
  if (!hops) return client;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i];
    if (hop === undefined) return client;
    client = hop;
    if (!trusted.has(hop)) return hop;
  }
  return client;
}

/**
 * The key under which failures of `address` are counted: an IPv4 address, or the /64 of an IPv6
 * address (one host gets a whole /64; rotating through it is one key).
 */
export function failureKey(address: string | undefined): string {
  const normalized = normalizeAddress(address);
  if (normalized === undefined) return address ?? 'unknown';
  if (isIP(normalized) === 4) return normalized;
  return `${expandIPv6(normalized).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  let text = address;
  // An embedded IPv4 tail (::ffff:1.2.3.4 was handled above; 64:ff9b::1.2.3.4 is not).
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) text = text.slice(0, v4.index) + [((+v4[1]! << 8) | +v4[2]!).toString(16), ((+v4[3]! << 8) | +v4[4]!).toString(16)].join(':');
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((group) => group.replace(/^0+(?=.)/, ''));
}
