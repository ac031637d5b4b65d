function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface IndexEntry {
  name: string;
  /** Relative path of the stream, e.g. `stream` or `stream/cam1`. */
  path: string;
  /** Query for the preview `<img>`, e.g. `?only=image`. */
  preview: string;
  /** The stream also carries html or text documents an `<img>` cannot show. */
  hasNonImages: boolean;
}

/**
 * `GET /`: each stream of the server in an `<img>`. A slideshow's `<img>` only gets its image
 * documents (`?only=image`): Chromium shows html and text parts in an `<img>` as a broken image
 * and crashes its renderer when such a stream ends.
 */
export function renderIndexPage(options: { title: string; streams: IndexEntry[] }): string {
  const title = escapeHtml(options.title);
  const streams = options.streams.map((entry, i) => {
    const note = entry.hasNonImages
      ? '<p class="note">This stream also carries html, text or json documents; browsers other than Firefox no longer draw those in an image, so the preview shows its images only.</p>'
      : '';
    const path = escapeHtml(entry.path);
    return `<section>
<h2>${escapeHtml(entry.name)}</h2>
<img${i === 0 ? ' id="stream"' : ''} src="${path}${escapeHtml(entry.preview)}" alt="stream ${escapeHtml(entry.name)}">
${note}
<p><a href="${path}">/${path}</a> · <a href="${path.replace(/^stream/, 'snapshot')}">snapshot</a></p>
</section>`;
  }).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — serverpush</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 2rem; background: #111; color: #eee; }
  img { max-width: 100%; background: #222; min-width: 160px; min-height: 120px; }
  a { color: #8cf; }
  .note { color: #aaa; max-width: 40rem; }
</style>
</head>
<body>
<h1>${title}</h1>
${streams}
<p><a href="status">/status</a></p>
</body>
</html>
`;
}
