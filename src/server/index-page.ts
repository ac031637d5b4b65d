/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface IndexEntry {
  name: string;
  kind: 'slideshow' | 'live';
  /** Relative path of the stream, e.g. `stream` or `stream/cam1`. */
  path: string;
  /** Relative path of its viewer, e.g. `view` or `view/cam1`. */
  view: string;
  /**
   * What the preview `<img>` loads (e.g. `stream?only=image`), or undefined when the stream has no
   * image to show in one: the preview is then the viewer itself, in an iframe.
   */
  preview: string | undefined;
  /** The stream also carries html or text documents an `<img>` cannot show. */
  hasNonImages: boolean;
}

/**
 * `GET /`: each stream of the server with a live preview and a link to its viewer. A preview
 * `<img>` only gets image parts (`?only=image` for slideshows): Chromium shows html and text parts
 * in an `<img>` as a broken image and crashes its renderer when such a stream ends. Streams without
 * images are previewed by the viewer, in an iframe.
 */
export function renderIndexPage(options: { title: string; streams: IndexEntry[] }): string {
  const title = escapeHtml(options.title);
  let firstImage = true;
  const streams = options.streams.map((entry) => {
    const view = escapeHtml(entry.view);
    const name = escapeHtml(entry.name);
    let preview: string;
    if (entry.preview !== undefined) {
      preview = `<a href="${view}"><img${firstImage ? ' id="stream"' : ''} src="${escapeHtml(entry.preview)}" alt="stream ${name}"></a>`;
      firstImage = false;
    } else {
      preview = `<iframe src="${view}?embed=1&amp;controls=0" title="stream ${name}"></iframe>`;
    }
    const note = entry.hasNonImages && entry.preview !== undefined
      ? '<p class="note">This stream also carries html, text or json documents: the preview shows its images, the viewer shows everything.</p>'
      : '';
    const path = escapeHtml(entry.path);
    return `<section>
<h2>${name} <span class="kind">${entry.kind === 'live' ? 'live' : 'slideshow'}</span></h2>
<div class="preview">${preview}</div>
${note}
<p><a class="view" href="${view}">open the viewer</a> · <a href="${path}">/${path}</a> · <a href="${path.replace(/^stream/, 'snapshot')}">snapshot</a></p>
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
  main { display: flex; flex-wrap: wrap; gap: 1.5rem; }
  section { background: #1b1b1b; border: 1px solid #333; border-radius: 6px; padding: 0 1rem; width: 420px; max-width: 100%; }
  h2 { font-size: 1.15rem; }
  .kind { font-size: 0.8rem; font-weight: normal; color: #999; border: 1px solid #444; border-radius: 3px; padding: 0 0.4em; margin-left: 0.4em; }
  .preview img { display: block; max-width: min(100%, 420px); max-height: 315px; background: #222; min-width: 160px; min-height: 120px; }
  .preview iframe { display: block; width: 420px; max-width: 100%; height: 315px; border: 0; background: #222; }
  a { color: #8cf; }
  .note { color: #aaa; max-width: 30rem; font-size: 0.9rem; }
</style>
</head>
<body>
<h1>${title}</h1>
<main>
${streams}
</main>
<p><a href="status">/status</a></p>
</body>
</html>
`;
}
