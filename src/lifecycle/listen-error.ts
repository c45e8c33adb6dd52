/**
 * A failed listen (a HOST this machine does not have, a port in use) told with the variables at
 * fault: Node's own message names an address, not the setting that chose it.
 */
export function listenError(
  portVariable: 'PORT' | 'METRICS_PORT',
  host: string,
  port: number,
  error: unknown,
): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`cannot listen on HOST=${host} ${portVariable}=${port}: ${reason}`, {
    cause: error,
  });
}
