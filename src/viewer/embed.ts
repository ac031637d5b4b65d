/**
 * The entry point of `/viewer/player.js`, bundled for browsers (a classic script, no module
 * loader needed, so one `<script src>` tag works on any page):
 *
 * ```html
 * <div id="cam" style="height: 480px"></div>
 * <script src="http://host:8080/viewer/player.js" data-stream="http://host:8080/stream/cam" data-target="cam"></script>
 * ```
 *
 * `data-stream` (required for the automatic mount), `data-target` (an element id; default: a new
 * element after the script), `data-raw="0"` (read a stream that is not serverpush's),
 * `data-reconnect-on-end="1"`, `data-controls="0"`. It also defines
 * `window.serverpushViewer.mount(element, streamUrl, options)`.
 */
import { mountPlayer, type Player, type PlayerOptions } from './stream-player.ts';

const script = document.currentScript instanceof HTMLScriptElement ? document.currentScript : null;
// The sandbox frame is served beside the script: /viewer/player.js -> /viewer/frame.
const frameUrl = new URL('frame', script?.src || document.baseURI).href;

function flag(value: string | undefined): boolean | undefined {
  return value === undefined ? undefined : value !== '0' && value !== 'false';
}

function mount(target: HTMLElement | string, stream: string, options: Partial<Omit<PlayerOptions, 'stream'>> = {}): Player {
  const element = typeof target === 'string' ? document.getElementById(target) : target;
  if (!element) throw new Error(`serverpush viewer: no element ${JSON.stringify(target)}`);
  return mountPlayer(element, { frameUrl, ...options, stream });
}

const api = { mount, version: 1 };
(globalThis as unknown as { serverpushViewer: typeof api }).serverpushViewer = api;

function autoMount(tag: HTMLScriptElement): void {
  const { stream, target, raw, reconnectOnEnd, controls } = tag.dataset;
  if (!stream) return;
  let element = target ? document.getElementById(target) : null;
  if (!element) {
    element = document.createElement('div');
    element.style.height = '480px';
    tag.after(element);
  }
  const options: Partial<PlayerOptions> = {};
  const rawFlag = flag(raw), endFlag = flag(reconnectOnEnd), controlsFlag = flag(controls);
  if (rawFlag !== undefined) options.raw = rawFlag;
  if (endFlag !== undefined) options.reconnectOnEnd = endFlag;
  if (controlsFlag !== undefined) options.controls = controlsFlag;
  mount(element, stream, options);
}

if (script?.dataset['stream']) {
  const tag = script;
  if (!tag.dataset['target'] || document.getElementById(tag.dataset['target'])) autoMount(tag);
  else document.addEventListener('DOMContentLoaded', () => autoMount(tag), { once: true });
}
