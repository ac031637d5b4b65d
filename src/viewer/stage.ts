import type { ViewerPart } from './connection.ts';

/** How a part is shown: by its Content-Type. */
export type PartKind = 'image' | 'html' | 'text' | 'other';

/** Image types every current browser draws in an `<img>`. */
const IMAGE_TYPES = new Set(['image/jpeg', 'image/pjpeg', 'image/jpg', 'image/gif', 'image/png', 'image/apng', 'image/webp', 'image/svg+xml', 'image/avif', 'image/bmp']);

/** The media type of a Content-Type, lower case, without parameters. */
export function essenceOf(contentType: string): string {
  return contentType.split(';')[0]!.trim().toLowerCase();
}

export function kindOf(contentType: string): PartKind {
  const essence = essenceOf(contentType);
  if (IMAGE_TYPES.has(essence)) return 'image';
  if (essence === 'text/html' || essence === 'application/xhtml+xml') return 'html';
  if (essence.startsWith('text/') || essence === 'application/json' || essence.endsWith('+json') || essence === 'application/xml' || essence.endsWith('+xml')) return 'text';
  return 'other';
}

function charsetOf(contentType: string): string {
  return /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1] ?? 'utf-8';
}

function decodeText(part: ViewerPart): string {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charsetOf(part.contentType));
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  const text = decoder.decode(joinChunks(part));
  if (essenceOf(part.contentType) === 'application/json' || essenceOf(part.contentType).endsWith('+json')) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }
  return text;
}

function joinChunks(part: ViewerPart): Uint8Array {
  if (part.chunks.length === 1) return part.chunks[0]!;
  const body = new Uint8Array(part.size);
  let offset = 0;
  for (const chunk of part.chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

/** Messages between the stage and its sandbox frames (`/viewer/frame`). */
interface FrameMessage {
  type?: unknown;
  id?: unknown;
}

interface SandboxFrame {
  element: HTMLIFrameElement;
  /** The frame's window (kept: `contentWindow` is null once the frame is removed). */
  window: Window;
  ready: Promise<boolean>;
}

const FRAME_READY_TIMEOUT_MS = 5000;
/** How often a stream shown natively ({@link Stage.showNative}) is checked, and requested again when broken. */
const NATIVE_CHECK_MS = 2000;
const FRAME_SHOW_TIMEOUT_MS = 5000;

function css(element: HTMLElement, style: Partial<CSSStyleDeclaration>): void {
  // Property by property (CSSOM), which a page's Content-Security-Policy allows, unlike style attributes.
  Object.assign(element.style, style);
}

/**
 * Where parts are shown, each by its type, the new one replacing the old only once it is ready
 * (decoded, or rendered), so nothing flickers: images in an `<img>`, html in a sandboxed iframe,
 * text in a `<pre>`.
 *
 * Html goes into a frame loaded from the server's `/viewer/frame`, which is sandboxed twice:
 * the iframe's `sandbox="allow-scripts"` (no `allow-same-origin`) and the frame response's own
 * `Content-Security-Policy: sandbox allow-scripts`. Its document has an opaque origin: a pushed
 * script runs, but cannot reach the viewer's DOM, cookies or storage, navigate the page, open
 * windows or submit forms. A `srcdoc` or `blob:` frame would inherit the viewer page's own strict
 * CSP, under which no pushed script or style would run at all.
 */
export class Stage {
  readonly element: HTMLDivElement;
  private readonly doc: Document;
  private readonly frameUrl: string;
  private readonly image: HTMLDivElement;
  private readonly html: HTMLDivElement;
  private readonly text: HTMLPreElement;
  private currentImage: HTMLImageElement | undefined;
  private currentImageUrl: string | undefined;
  private currentFrame: SandboxFrame | undefined;
  private spareFrame: SandboxFrame | undefined;
  private frameId = 0;
  private readonly waiters = new Map<Window, (message: FrameMessage) => void>();
  private nativeTimer: ReturnType<typeof setInterval> | undefined;
  /** The newest part asked to be shown; an older one still loading is dropped. */
  private wanted = 0;
  private shown = 0;

  constructor(doc: Document, frameUrl: string) {
    this.doc = doc;
    this.frameUrl = frameUrl;
    this.element = doc.createElement('div');
    this.element.dataset['role'] = 'stage';
    css(this.element, { position: 'relative', flex: '1 1 auto', minHeight: '120px', overflow: 'auto', display: 'flex', alignItems: 'center', justifyContent: 'center' });
    this.image = doc.createElement('div');
    this.html = doc.createElement('div');
    this.text = doc.createElement('pre');
    this.image.dataset['role'] = 'image';
    this.html.dataset['role'] = 'html';
    this.text.dataset['role'] = 'text';
    css(this.image, { display: 'none', maxWidth: '100%', maxHeight: '100%' });
    css(this.html, { display: 'none', position: 'relative', alignSelf: 'stretch', width: '100%', minHeight: '60vh', background: '#fff' });
    css(this.text, { display: 'none', alignSelf: 'stretch', width: '100%', margin: '0', padding: '1em', boxSizing: 'border-box', whiteSpace: 'pre-wrap', overflowWrap: 'anywhere', font: '14px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace', background: '#fdfdf8', color: '#222' });
    this.element.append(this.image, this.html, this.text);
    doc.defaultView?.addEventListener('message', (event: MessageEvent) => {
      const waiter = event.source ? this.waiters.get(event.source as Window) : undefined;
      if (waiter && typeof event.data === 'object' && event.data !== null) waiter(event.data as FrameMessage);
    });
  }

  /**
   * Loads a spare sandbox frame now (once the stage is in the document), so that even the first
   * html part is shown without waiting for a frame to load (100–200 ms in Chromium, which gives
   * each sandboxed frame a process of its own). Resolves true once it is ready.
   */
  preload(): Promise<boolean> {
    this.spareFrame ??= this.createFrame();
    return this.spareFrame.ready;
  }

  /** The kind of the part on show, or undefined before the first. */
  get showing(): PartKind | undefined {
    return this.image.style.display !== 'none' ? 'image' : this.html.style.display !== 'none' ? 'html' : this.text.style.display !== 'none' ? 'text' : undefined;
  }

  /**
   * Shows `part` once it is ready. Resolves true when it is on show, false when a newer part was
   * asked for meanwhile (or it could not be shown); rejects never.
   */
  async show(part: ViewerPart): Promise<boolean> {
    const ticket = ++this.wanted;
    const kind = kindOf(part.contentType);
    try {
      if (kind === 'image') return await this.showImage(part, ticket);
      if (kind === 'html') return await this.showHtml(part, ticket);
      return this.commit(ticket, 'text', () => {
        this.text.textContent = kind === 'text' ? decodeText(part) : `(${essenceOf(part.contentType)}, ${part.size} bytes: not shown)`;
      });
    } catch {
      return false;
    }
  }

  /** Makes `kind` the visible layer, if `ticket` is still the newest. */
  private commit(ticket: number, kind: 'image' | 'html' | 'text', swap: () => void): boolean {
    if (ticket !== this.wanted || ticket < this.shown) return false;
    this.shown = ticket;
    swap();
    this.image.style.display = kind === 'image' ? 'block' : 'none';
    this.html.style.display = kind === 'html' ? 'block' : 'none';
    this.text.style.display = kind === 'text' ? 'block' : 'none';
    if (kind !== 'html' && this.currentFrame) {
      this.drop(this.currentFrame);
      this.currentFrame = undefined;
    }
    return true;
  }

  private async showImage(part: ViewerPart, ticket: number): Promise<boolean> {
    const url = URL.createObjectURL(new Blob(part.chunks as unknown as BlobPart[], { type: essenceOf(part.contentType) }));
    const img = this.doc.createElement('img');
    img.alt = '';
    img.dataset['seq'] = String(part.seq);
    css(img, { display: 'block', maxWidth: '100%', maxHeight: '100%', margin: '0 auto' });
    img.src = url;
    try {
      await img.decode();
    } catch {
      URL.revokeObjectURL(url);
      return false;
    }
    const done = this.commit(ticket, 'image', () => {
      if (this.currentImage) this.currentImage.replaceWith(img);
      else this.image.append(img);
      if (this.currentImageUrl) URL.revokeObjectURL(this.currentImageUrl);
      this.currentImage = img;
      this.currentImageUrl = url;
    });
    if (!done) URL.revokeObjectURL(url);
    return done;
  }

  /** A new sandbox frame, hidden, that resolves `ready` once its script listens. */
  private createFrame(): SandboxFrame {
    const element = this.doc.createElement('iframe');
    element.setAttribute('sandbox', 'allow-scripts');
    element.setAttribute('referrerpolicy', 'no-referrer');
    element.title = 'pushed document';
    css(element, { position: 'absolute', inset: '0', width: '100%', height: '100%', border: '0', visibility: 'hidden', background: '#fff' });
    element.src = this.frameUrl;
    this.html.append(element);
    const window = element.contentWindow!;
    const ready = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), FRAME_READY_TIMEOUT_MS);
      this.waiters.set(window, (message) => {
        if (message.type !== 'serverpush:ready') return;
        clearTimeout(timer);
        resolve(true);
      });
    });
    return { element, window, ready };
  }

  private drop(frame: SandboxFrame): void {
    frame.element.remove();
    this.waiters.delete(frame.window);
  }

  private async showHtml(part: ViewerPart, ticket: number): Promise<boolean> {
    // A spare frame is kept loaded, so that a document is shown without waiting for a request.
    const frame = this.spareFrame ?? this.createFrame();
    this.spareFrame = undefined;
    const html = decodeText(part);
    if (!(await frame.ready)) {
      this.drop(frame);
      // The frame could not load (a page's CSP may forbid it): show the document's source instead.
      return this.commit(ticket, 'text', () => { this.text.textContent = html; });
    }
    const id = ++this.frameId;
    const source = frame.window;
    const shown = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, FRAME_SHOW_TIMEOUT_MS);
      this.waiters.set(source, (message) => {
        if (message.type === 'serverpush:shown' && message.id === id) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    source.postMessage({ type: 'serverpush:html', id, html }, '*');
    await shown;
    const done = this.commit(ticket, 'html', () => {
      frame.element.style.visibility = 'visible';
      const previous = this.currentFrame;
      this.currentFrame = frame;
      if (previous) this.drop(previous);
    });
    if (!done) this.drop(frame);
    // The next spare, once this document is on show: creating a frame costs the page 5–30 ms.
    setTimeout(() => { this.spareFrame ??= this.createFrame(); }, 0);
    return done;
  }

  /**
   * Shows the stream at `url` in a plain `<img>`, by the browser's own multipart support: for a
   * browser whose fetch cannot read the stream (WebKit, when the stream has no raw variant).
   * Images only, and parts pass unseen by the player. A picture that breaks — the request failed,
   * or (WebKit, which fires no event then) the connection dropped — is requested again.
   */
  showNative(url: string): void {
    const load = () => {
      const img = this.doc.createElement('img');
      img.alt = '';
      img.dataset['native'] = 'true';
      css(img, { display: 'block', maxWidth: '100%', maxHeight: '100%', margin: '0 auto' });
      img.src = url;
      return img;
    };
    const place = (img: HTMLImageElement) => {
      if (this.currentImage) {
        this.currentImage.removeAttribute('src');
        this.currentImage.replaceWith(img);
      } else {
        this.image.append(img);
      }
      if (this.currentImageUrl) URL.revokeObjectURL(this.currentImageUrl);
      this.currentImage = img;
      this.currentImageUrl = undefined;
    };
    this.commit(++this.wanted, 'image', () => place(load()));
    clearInterval(this.nativeTimer);
    this.nativeTimer = setInterval(() => {
      const img = this.currentImage;
      if (img && img.complete && img.naturalWidth === 0) place(load());
    }, NATIVE_CHECK_MS);
  }

  /** Removes every frame and image. */
  dispose(): void {
    clearInterval(this.nativeTimer);
    this.currentImage?.removeAttribute('src');
    for (const frame of [this.currentFrame, this.spareFrame]) frame?.element.remove();
    this.waiters.clear();
    if (this.currentImageUrl) URL.revokeObjectURL(this.currentImageUrl);
    this.element.remove();
  }
}
