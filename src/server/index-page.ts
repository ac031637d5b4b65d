function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * `GET /`: a page showing the stream. An `<img>` only gets the image documents
 * (`/stream?only=image`): Chromium shows html and text parts in an `<img>` as a broken image and
 * crashes its renderer when such a stream ends.
 */
export function renderIndexPage(options: { title: string; hasOtherDocuments: boolean }): string {
  const title = escapeHtml(options.title);
  const note = options.hasOtherDocuments
    ? '<p class="note">This folder also holds html, text or json documents; browsers other than Firefox no longer draw those in an image, so this page shows the images only. The full stream is at <a href="stream">/stream</a>.</p>'
    : '';
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
<img id="stream" src="stream?only=image" alt="live stream">
${note}
<p><a href="stream">/stream</a> · <a href="status">/status</a></p>
</body>
</html>
`;
}
