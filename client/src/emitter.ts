export type Handler<T> = (payload: T) => void;

/** A small typed event emitter: `on` returns the function that removes the handler. */
export class Emitter<M extends object> {
  private readonly handlers = new Map<keyof M, Set<Handler<never>>>();

  on<K extends keyof M>(event: K, handler: Handler<M[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    set.add(handler);
    return () => this.off(event, handler);
  }

  off<K extends keyof M>(event: K, handler: Handler<M[K]>): void {
    this.handlers.get(event)?.delete(handler);
  }

  emit<K extends keyof M>(event: K, payload: M[K]): void {
    for (const handler of [...(this.handlers.get(event) ?? [])]) {
      try {
        (handler as Handler<M[K]>)(payload);
      } catch (error) {
        // A throwing app handler must not leave a frame half handled: reported as unhandled.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
