import type { IncomingMessage } from 'node:http';
import { addressBlockOf, clientAddressOf, TrustedProxies } from './client-address.js';

const request = (peer: string, forwardedFor?: string): IncomingMessage =>
  ({
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  }) as unknown as IncomingMessage;

describe('clientAddressOf', () => {
  const none = new TrustedProxies([]);
  const proxies = new TrustedProxies(['10.0.0.0/8', '::1']);

  it('is the TCP peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddressOf(request('203.0.113.7', '198.51.100.1'), none)).toBe('203.0.113.7');
  });

  it('unwraps IPv4-mapped IPv6 peers', () => {
    expect(clientAddressOf(request('::ffff:203.0.113.7'), none)).toBe('203.0.113.7');
  });

  it('ignores X-Forwarded-For from a peer that is not trusted', () => {
    expect(clientAddressOf(request('203.0.113.7', '198.51.100.1'), proxies)).toBe('203.0.113.7');
  });

  it('believes a trusted proxy: the nearest hop that is not itself a trusted proxy', () => {
    expect(clientAddressOf(request('10.1.2.3', '198.51.100.1'), proxies)).toBe('198.51.100.1');
    expect(clientAddressOf(request('::ffff:10.1.2.3', '198.51.100.1, 10.9.9.9'), proxies)).toBe(
      '198.51.100.1',
    );
  });

  it('does not believe what a client wrote further left', () => {
    // The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the real address.
    expect(clientAddressOf(request('10.1.2.3', '1.1.1.1, 198.51.100.1'), proxies)).toBe(
      '198.51.100.1',
    );
  });

  it('falls back to the peer when the header is missing or the hop is not an address', () => {
    expect(clientAddressOf(request('10.1.2.3'), proxies)).toBe('10.1.2.3');
    expect(clientAddressOf(request('10.1.2.3', 'garbage'), proxies)).toBe('10.1.2.3');
  });

  it('matches IPv6 entries', () => {
    expect(clientAddressOf(request('::1', '2001:db8::5'), proxies)).toBe('2001:db8::5');
  });

  it('refuses an entry that is not an address', () => {
    expect(() => new TrustedProxies(['proxy.internal'])).toThrow(/TRUST_PROXY/);
  });
});

describe('addressBlockOf', () => {
  it('is an IPv4 address itself, also written IPv4-mapped', () => {
    expect(addressBlockOf('203.0.113.7')).toBe('203.0.113.7');
    expect(addressBlockOf('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('is the /64 of an IPv6 address, however it is written', () => {
    expect(addressBlockOf('2001:db8:0:1::7')).toBe('2001:db8:0:1::/64');
    expect(addressBlockOf('2001:0DB8:0000:0001:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:0:1::/64');
    expect(addressBlockOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressBlockOf('::1')).toBe('0:0:0:0::/64');
    expect(addressBlockOf('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressBlockOf('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });

  it('returns anything else as it is', () => {
    expect(addressBlockOf('')).toBe('');
    expect(addressBlockOf('not an address')).toBe('not an address');
  });
});
