/**
 * A small typed event emitter (`on`, `off`, `once`, `emit`), so that the hub runs in any JavaScript
 * runtime without `node:events`. Listeners are called in the order they were added; one that
 * throws does not keep the others from being called (its error is rethrown after them).
 */
type Listener = (...args: never[]) => void;

export class Emitter<Events extends Record<string, unknown[]>> {
  private readonly listeners = new Map<keyof Events, Array<Listener>>();

  /** Calls `listener` at each `event`. */
  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    const list = this.listeners.get(event);
    if (list) list.push(listener as unknown as Listener);
    else this.listeners.set(event, [listener as unknown as Listener]);
    return this;
  }

  /** Calls `listener` at the next `event` only. */
  once<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    const wrapper = (...args: Events[E]) => {
      this.off(event, wrapper);
      listener(...args);
    };
    return this.on(event, wrapper);
  }

  /** Removes `listener` (added by `on`; the first match). */
  off<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    const list = this.listeners.get(event);
    const at = list?.indexOf(listener as unknown as Listener) ?? -1;
    if (at !== -1) list!.splice(at, 1);
    return this;
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /** Calls every listener of `event`; returns true when there was one. */
  emit<E extends keyof Events>(event: E, ...args: Events[E]): boolean {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) return false;
    let failure: { error: unknown } | undefined;
    for (const listener of [...list]) {
      try {
        (listener as unknown as (...args: Events[E]) => void)(...args);
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
    return true;
  }
}
