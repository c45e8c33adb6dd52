import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AppConfig } from '../config/app.config.js';
import { ConnectionAdmission } from './connection-admission.js';

/** An upgrade request from 127.0.0.1 whose TCP socket closes on `socket.emit('close')`. */
function upgradeRequest(): IncomingMessage {
  const socket = Object.assign(new EventEmitter(), { remoteAddress: '127.0.0.1' });
  return { headers: {}, socket } as unknown as IncomingMessage;
}

function admissionOf(maxConnections: number): ConnectionAdmission {
  const config = {
    trustProxy: [],
    allowedOrigins: ['*'],
    authMode: 'api-key',
    maxConnections,
    maxConnectionsPerIp: 0,
  } as unknown as AppConfig;
  return new ConnectionAdmission(config);
}

describe('ConnectionAdmission.releasePlace', () => {
  it('gives the place back at once, and the TCP close does not give it back again', () => {
    const admission = admissionOf(1);
    const refused = upgradeRequest();
    expect(admission.admit(refused)).toEqual({ ok: true });
    const member = upgradeRequest();
    expect(admission.admit(member)).toMatchObject({ ok: false, status: 503 });

    admission.releasePlace(refused);
    expect(admission.openConnections()).toBe(0);
    expect(admission.admit(member)).toEqual({ ok: true });
    admission.releasePlace(refused);
    refused.socket.emit('close');
    expect(admission.openConnections()).toBe(1);
  });

  it('leaves a request that holds no place alone', () => {
    const admission = admissionOf(1);
    const held = upgradeRequest();
    admission.admit(held);
    admission.releasePlace(upgradeRequest());
    expect(admission.openConnections()).toBe(1);
    held.socket.emit('close');
    expect(admission.openConnections()).toBe(0);
  });
});
