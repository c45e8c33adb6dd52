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
        // An application handler that throws must not stop the frame being handled (the room
        // state would be left half updated); report it where unhandled errors go.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
