/** What a request asks for: the pieces of content negotiation shared by the adapters and routes. */

/** True for `?raw=1`: the raw variant of a stream (the same bytes as `application/octet-stream`). */
export function isRawRequest(query: URLSearchParams): boolean {
  const raw = query.get('raw');
  return raw === '1' || raw === 'true';
}

/**
 * True when an Accept header prefers `text/html` (a browser navigating to the URL): `text/html`
 * is listed with a q-value above 0 and at least as high as any other listed type. `*\/*` alone
 * (curl, ffmpeg, fetch) and image loads (`image/avif,image/webp,…`) are not.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = 0;
  let other = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...parameters] = range.split(';').map((s) => s.trim().toLowerCase());
    let q = 1;
    for (const parameter of parameters) {
      if (!parameter.startsWith('q=')) continue;
      const value = Number(parameter.slice(2));
      q = Number.isFinite(value) && value >= 0 && value <= 1 ? value : 0;
    }
    if (type === 'text/html') html = Math.max(html, q);
    else if (type !== '*/*') other = Math.max(other, q);
  }
  return html > 0 && html >= other;
}

/**
 * Eager framing for a live stream's viewer: an `<img>` load (every current browser asks for
 * images with an Accept header that starts with `image/`) or a browser opening the stream itself
 * (Accept prefers text/html). Chromium draws a frame only once the next part's headers are in
 * (crbug 527446). Programs (ffmpeg, curl, fetch, the viewer's raw variant) get each part with
 * full headers. `?eager=1|0` decides instead.
 */
export function wantsEager(accept: string | undefined, query: URLSearchParams): boolean {
  const eager = query.get('eager');
  if (eager === '1' || eager === 'true') return true;
  if (eager === '0' || eager === 'false' || isRawRequest(query)) return false;
  return /^\s*image\//i.test(accept ?? '') || prefersHtml(accept);
}
