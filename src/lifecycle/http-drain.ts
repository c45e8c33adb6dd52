import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The sockets of an HTTP server, and which of them carry a request now (its headers all arrived,
 * its response not yet sent). `server.close()` waits for every socket: an idle keep-alive one
 * that turned idle after the close began, or one whose request never finished arriving, would
 * keep it waiting forever. `drain` closes those, and lets a request in progress get its answer.
 */
export class HttpDrain {
  private readonly sockets = new Set<Socket>();
  /** Sockets with a request in progress: the count of their unsent responses (pipelining). */
  private readonly busy = new Map<Socket, number>();
  private draining = false;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => this.onConnection(socket));
    server.on('request', (request: { socket: Socket }, response: ServerResponse) =>
      this.onRequest(request.socket, response),
    );
  }

  /**
   * Closes every socket without a request in progress now (a socket that arrives later, at
   * once), each other one once its response is sent, and any still open after `graceMs`.
   * WebSocket connections have no request in progress: they were told to close before this.
   */
  drain(graceMs: number): void {
    if (this.draining) {
      return;
    }
    this.draining = true;
    for (const socket of this.sockets) {
      if (!this.busy.has(socket)) {
        socket.destroy();
      }
    }
    setTimeout(() => this.destroyAll(), graceMs).unref();
  }

  private onConnection(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.busy.delete(socket);
    });
  }

  private onRequest(socket: Socket, response: ServerResponse): void {
    this.busy.set(socket, (this.busy.get(socket) ?? 0) + 1);
    // 'close' follows a response sent whole and one cut short alike.
    response.once('close', () => this.onResponseDone(socket));
  }

  private onResponseDone(socket: Socket): void {
    const left = (this.busy.get(socket) ?? 1) - 1;
    if (left > 0) {
      this.busy.set(socket, left);
      return;
    }
    this.busy.delete(socket);
    if (this.draining) {
      // After what is still buffered: the answer must arrive whole.
      socket.destroySoon();
    }
  }

  private destroyAll(): void {
    for (const socket of this.sockets) {
      socket.destroy();
    }
  }
}
