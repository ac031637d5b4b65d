import { StreamConnection, type ConnectionState, type ViewerPart } from './connection.ts';
import { Stage, kindOf, essenceOf, type PartKind } from './stage.ts';

/** Options of {@link mountPlayer}. */
export interface PlayerOptions {
  /** The stream's URL (relative URLs resolve against the page). */
  stream: string;
  /** URL of the sandbox frame for html parts (a serverpush server's `/viewer/frame`). */
  frameUrl: string;
  /** Read the raw variant (`?raw=1`) of a serverpush stream. @default true */
  raw?: boolean;
  /** Reconnect also after the closing delimiter. @default false */
  reconnectOnEnd?: boolean;
  /** Show the status bar and the pause button. @default true */
  controls?: boolean;
  /** First and longest reconnect delays, in ms. @default 250 and 10000 */
  initialRetryMs?: number;
  maxRetryMs?: number;
}

/**
 * `detail` of the `serverpush:show` event, dispatched (bubbling) on the player's element each
 * time a part is on show.
 */
export interface ShowDetail {
  seq: number;
  kind: PartKind;
  contentType: string;
  size: number;
  /** `X-Timestamp` in ms, if the part had one. */
  timestamp: number | undefined;
  receivedAt: number;
  shownAt: number;
}

/** A mounted player. */
export interface Player {
  readonly element: HTMLElement;
  /** Parts received since mounting (reconnects included). */
  readonly parts: number;
  readonly paused: boolean;
  /**
   * Freezes what is shown; parts are still received and counted, the newest is kept. Does nothing
   * while the stream is shown in a plain `<img>` (`data-state="native"`).
   */
  pause(): void;
  /** Shows the newest part again, and each one as it arrives. */
  resume(): void;
  /** Disconnects and removes the player. */
  destroy(): void;
}

const FPS_WINDOW_MS = 3000;
const FRAME_WAIT_MS = 1500;

function describeState(state: ConnectionState): { text: string; color: string } {
  switch (state.state) {
    case 'connecting': return { text: state.attempt === 0 ? 'connecting…' : `reconnecting (attempt ${state.attempt + 1})…`, color: '#e0b000' };
    case 'open': return { text: 'live', color: '#2ea043' };
    case 'retrying': return { text: `${state.reason}; retrying in ${(state.retryInMs / 1000).toFixed(1)} s`, color: '#e0b000' };
    case 'ended': return { text: 'ended', color: '#888' };
    case 'failed': return { text: `failed: ${state.reason}`, color: '#d73a49' };
    case 'unreadable': return { text: `failed: ${state.reason}`, color: '#d73a49' };
    case 'stopped': return { text: 'stopped', color: '#888' };
  }
}

function el<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, role: string, style: Partial<CSSStyleDeclaration> = {}): HTMLElementTagNameMap[K] {
  const element = doc.createElement(tag);
  element.dataset['role'] = role;
  Object.assign(element.style, style);
  return element;
}

/**
 * Mounts a player of one stream into `container`: the stage (each part by its type), and a
 * status bar with the connection state, the part count, frame rate, latency (now minus the
 * part's `X-Timestamp`, so it includes any clock difference with the server) and pause/resume.
 * The container's `data-state` attribute follows the connection state, and is `native` once the
 * stream is shown in a plain `<img>` because this browser's fetch cannot read it (WebKit reading
 * a stream without serverpush's raw variant).
 */
export function mountPlayer(container: HTMLElement, options: PlayerOptions): Player {
  const doc = container.ownerDocument;
  const root = el(doc, 'div', 'player', { display: 'flex', flexDirection: 'column', width: '100%', height: '100%', minHeight: 'inherit', boxSizing: 'border-box', font: '13px/1.4 system-ui, sans-serif', color: '#ddd', background: '#1a1a1a' });
  const stage = new Stage(doc, options.frameUrl);
  const bar = el(doc, 'div', 'bar', { display: options.controls === false ? 'none' : 'flex', flexWrap: 'wrap', alignItems: 'center', gap: '0.4em 1.2em', padding: '0.4em 0.8em', background: '#111', borderTop: '1px solid #333' });
  const dot = el(doc, 'span', 'dot', { display: 'inline-block', width: '0.7em', height: '0.7em', borderRadius: '50%', background: '#888' });
  const stateText = el(doc, 'span', 'state');
  const stateBox = el(doc, 'span', 'connection', { display: 'inline-flex', alignItems: 'center', gap: '0.5em', flex: '1 1 16em', minWidth: '0' });
  stateBox.append(dot, stateText);
  const partsText = el(doc, 'span', 'parts');
  const typeText = el(doc, 'span', 'type', { color: '#aaa' });
  const fpsText = el(doc, 'span', 'fps');
  const latencyText = el(doc, 'span', 'latency');
  const pauseButton = el(doc, 'button', 'pause', { font: 'inherit', padding: '0.15em 0.9em', borderRadius: '4px', border: '1px solid #555', background: '#2a2a2a', color: '#eee', cursor: 'pointer' });
  pauseButton.type = 'button';
  pauseButton.textContent = 'Pause';
  bar.append(stateBox, partsText, typeText, fpsText, latencyText, pauseButton);
  root.append(stage.element, bar);
  container.replaceChildren(root);
  const frameReady = stage.preload();

  let destroyed = false;
  let parts = 0;
  let paused = false;
  let latest: ViewerPart | undefined;
  let lastLatency: number | undefined;
  let connection: ConnectionState = { state: 'connecting', attempt: 0 };
  /** Set when the stream is shown in a plain `<img>` (this browser's fetch cannot read it): why. */
  let native: string | undefined;
  const arrivals: number[] = [];
  let lastGap = 0;

  /**
   * Parts per second: over the last FPS_WINDOW_MS when that holds three parts or more, else from
   * the gap between the last two (slideshows), and 0 once no part came for twice that gap.
   */
  const partsPerSecond = (now: number): number => {
    while (arrivals.length > 0 && arrivals[0]! < now - FPS_WINDOW_MS) arrivals.shift();
    if (arrivals.length >= 3) return (arrivals.length - 1) * 1000 / Math.max(now - arrivals[0]!, arrivals.at(-1)! - arrivals[0]!, 1);
    const last = latest?.receivedAt;
    if (last === undefined || lastGap === 0 || now - last > Math.max(2 * lastGap, FPS_WINDOW_MS)) return 0;
    return 1000 / lastGap;
  };

  const render = () => {
    if (native !== undefined) {
      stateText.textContent = 'live, in a plain <img> (images only): this browser cannot read the stream with fetch';
      stateText.title = native;
      dot.style.background = '#2ea043';
      container.dataset['state'] = 'native';
      container.dataset['paused'] = 'false';
      for (const element of [partsText, typeText, fpsText, latencyText, pauseButton]) element.style.display = 'none';
      return;
    }
    const { text, color } = describeState(connection);
    stateText.textContent = paused ? `paused (${text})` : text;
    dot.style.background = paused ? '#58a6ff' : color;
    container.dataset['state'] = connection.state;
    container.dataset['paused'] = String(paused);
    partsText.textContent = `${parts} part${parts === 1 ? '' : 's'}`;
    typeText.textContent = latest ? essenceOf(latest.contentType) : '';
    fpsText.textContent = `${partsPerSecond(Date.now()).toFixed(partsPerSecond(Date.now()) < 1 ? 2 : 1)} fps`;
    latencyText.textContent = lastLatency === undefined ? 'latency –' : `latency ${lastLatency} ms`;
    pauseButton.textContent = finished() ? 'Reconnect' : paused ? 'Resume' : 'Pause';
  };
  const finished = () => connection.state === 'ended' || connection.state === 'failed';

  const show = (part: ViewerPart) => {
    void stage.show(part).then((shown) => {
      if (!shown) return;
      const detail: ShowDetail = { seq: part.seq, kind: kindOf(part.contentType), contentType: part.contentType, size: part.size, timestamp: part.timestamp, receivedAt: part.receivedAt, shownAt: Date.now() };
      container.dispatchEvent(new CustomEvent('serverpush:show', { detail, bubbles: true }));
    });
  };

  let stream: StreamConnection | undefined;
  const connect = () => new StreamConnection({
    url: new URL(options.stream, doc.baseURI).href,
    ...(options.raw !== undefined ? { raw: options.raw } : {}),
    ...(options.reconnectOnEnd !== undefined ? { reconnectOnEnd: options.reconnectOnEnd } : {}),
    ...(options.initialRetryMs !== undefined ? { initialRetryMs: options.initialRetryMs } : {}),
    ...(options.maxRetryMs !== undefined ? { maxRetryMs: options.maxRetryMs } : {}),
    onPart: (received) => {
      // Numbered across connections (a reconnect starts the connection's own count again).
      const part = { ...received, seq: ++parts };
      if (latest) lastGap = part.receivedAt - latest.receivedAt;
      latest = part;
      arrivals.push(part.receivedAt);
      if (part.timestamp !== undefined) lastLatency = Math.round(part.receivedAt - part.timestamp);
      if (!paused) show(part);
      render();
    },
    onState: (state) => {
      connection = state;
      render();
      container.dispatchEvent(new CustomEvent('serverpush:state', { detail: state, bubbles: true }));
      if (state.state === 'unreadable') showNative(state.reason);
    },
  });
  /** WebKit's fetch cannot read a multipart body: let the browser show the stream itself. */
  const showNative = (reason: string) => {
    native = reason;
    stage.showNative(new URL(options.stream, doc.baseURI).href);
    render();
    container.dispatchEvent(new CustomEvent('serverpush:state', { detail: { state: 'native', reason }, bubbles: true }));
  };
  const start = () => {
    stream = connect();
    stream.start();
  };
  const ticker = setInterval(render, 500);

  const player: Player = {
    element: root,
    get parts() { return parts; },
    get paused() { return paused; },
    pause() {
      if (native !== undefined) return;
      paused = true;
      render();
    },
    resume() {
      paused = false;
      if (latest) show(latest);
      render();
    },
    destroy() {
      destroyed = true;
      clearInterval(ticker);
      stream?.close();
      stage.dispose();
      root.remove();
    },
  };
  pauseButton.addEventListener('click', () => {
    if (finished()) start();
    else if (paused) player.resume();
    else player.pause();
  });
  render();
  // Connect once a sandbox frame is ready, so that a slideshow (which starts when we connect) has
  // its first document shown at once even when it is html; not later than FRAME_WAIT_MS.
  let waited: ReturnType<typeof setTimeout> | undefined;
  void Promise.race([frameReady, new Promise((resolve) => { waited = setTimeout(resolve, FRAME_WAIT_MS); })]).then(() => {
    clearTimeout(waited);
    if (!destroyed) start();
  });
  return player;
}
