/** Provided in cluster mode only: asks the shared store (Redis) for a round trip. */
export const STORE_PROBE = Symbol('STORE_PROBE');

export interface StoreProbe {
  /** The round trip's time in seconds; rejects when the store did not answer in time. */
  ping(): Promise<number>;
}
