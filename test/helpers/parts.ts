import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { MultipartParser, type MultipartLimits } from '../../src/protocol/parser.ts';
import type { MultipartPart } from '../../src/protocol/part.ts';

export const FIXTURES = new URL('../fixtures/', import.meta.url);

export interface FixturePart { contentType: string; length: number; sha256: string }
export interface Fixture { name: string; producer: string; contentType: string; closed: boolean; parts: FixturePart[]; bytes: Uint8Array }

/** The fixtures of test/fixtures/manifest.json, with their bytes. */
export function loadFixtures(): Fixture[] {
  const manifest = JSON.parse(readFileSync(new URL('manifest.json', FIXTURES), 'utf8')) as Record<string, Omit<Fixture, 'name' | 'bytes'>>;
  return Object.entries(manifest).map(([name, entry]) => ({ name, ...entry, bytes: new Uint8Array(readFileSync(new URL(name, FIXTURES))) }));
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function bytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

export function text(body: Uint8Array): string {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
}

/** Parses `input` fed as the given chunks (cut at `cuts`, ascending offsets), including end(). */
export function parseCut(boundary: string, input: Uint8Array, cuts: readonly number[], limits: MultipartLimits = {}): MultipartPart[] {
  const parser = new MultipartParser(boundary, limits);
  const parts: MultipartPart[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    parts.push(...parser.push(input.subarray(from, cut)));
    from = cut;
  }
  parts.push(...parser.end());
  return parts;
}

/** Parses `input` in chunks of `size` bytes. */
export function parseInChunks(boundary: string, input: Uint8Array, size: number, limits: MultipartLimits = {}): MultipartPart[] {
  const cuts: number[] = [];
  for (let i = size; i < input.length; i += size) cuts.push(i);
  return parseCut(boundary, input, cuts, limits);
}

/** A comparable summary of parts: type and body hash, in order. */
export function summary(parts: readonly MultipartPart[]): Array<{ contentType: string | undefined; length: number; sha256: string }> {
  return parts.map((p) => ({ contentType: p.headers['content-type'], length: p.body.length, sha256: sha256(p.body) }));
}
