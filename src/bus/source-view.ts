import type { LiveStream } from '../hub/live-stream.ts';

/** What the view asks of the stream's bus link. */
export interface SourceViewHooks {
  /** Viewers of every process: this one's, plus one per other process with viewers. */
  viewers(): number;
  /** The source's `'viewers'` listeners; the link calls them when {@link viewers} changes. */
  viewerListeners: Set<(count: number) => void>;
  /** The source marked the stream up or down (`setSource`). */
  stateChanged(): void;
}

/**
 * The stream as the owner's source sees it: the same stream, but `viewers` (and its `'viewers'`
 * event) count the viewers of every process, so that a relay or an on-demand command pulls while
 * any process has viewers, not only this one; and `setSource` is heard, so that the other
 * processes learn when the source goes down. Everything else is the stream itself.
 */
export function sourceView(live: LiveStream, hooks: SourceViewHooks): LiveStream {
  const view: LiveStream = new Proxy(live, {
    get(target, property) {
      if (property === 'viewers') return hooks.viewers();
      if (property === 'setSource') {
        return (state: Parameters<LiveStream['setSource']>[0]) => {
          target.setSource(state);
          hooks.stateChanged();
        };
      }
      if (property === 'on' || property === 'off' || property === 'once') {
        return (event: string, listener: (...args: never[]) => void) => {
          if (event !== 'viewers') {
            (target[property] as (event: string, listener: (...args: never[]) => void) => unknown).call(target, event, listener);
          } else if (property === 'off') {
            hooks.viewerListeners.delete(listener as (count: number) => void);
          } else if (property === 'on') {
            hooks.viewerListeners.add(listener as (count: number) => void);
          } else {
            const once = (count: number) => {
              hooks.viewerListeners.delete(once);
              (listener as (count: number) => void)(count);
            };
            hooks.viewerListeners.add(once);
          }
          return view;
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return view;
}
