import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** The proxies whose `X-Forwarded-For` is believed (TRUST_PROXY). */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  /** @param entries IP addresses or CIDR blocks, as validated by TRUST_PROXY. */
  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address, prefix] = entry.split('/');
      const type = isIPv6(address) ? 'ipv6' : 'ipv4';
      if (!isIPv4(address) && !isIPv6(address)) {
        throw new Error(`TRUST_PROXY: ${entry} is not an IP address or CIDR block`);
      }
      if (prefix === undefined) {
        this.list.addAddress(address, type);
      } else {
        this.list.addSubnet(address, Number(prefix), type);
      }
    }
  }

  trusts(address: string): boolean {
    if (this.empty) {
      return false;
    }
    const plain = unmapped(address);
    if (isIPv4(plain)) {
      return this.list.check(plain, 'ipv4');
    }
    return isIPv6(plain) && this.list.check(plain, 'ipv6');
  }
}

/**
 * The client's address: the TCP peer, unless that peer is a trusted proxy, in which case the
 * nearest `X-Forwarded-For` entry that is not itself a trusted proxy. Entries a client wrote
 * itself sit further left and are never reached while an untrusted hop stands before them.
 */
export function clientAddressOf(request: IncomingMessage, trusted: TrustedProxies): string {
  const peer = unmapped(request.socket.remoteAddress ?? '');
  if (!trusted.trusts(peer)) {
    return peer;
  }
  const header = request.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((hop) => unmapped(hop.trim()))
    .filter((hop) => hop.length > 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trusted.trusts(hops[i])) {
      return isIPv4(hops[i]) || isIPv6(hops[i]) ? hops[i] : peer;
    }
  }
  return hops[0] ?? peer;
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * The block an address stands for when counting what one client does: an IPv4 address itself,
 * and for IPv6 its /64 (`2001:db8:0:1::/64`), since one host is typically given a whole /64 and
 * could otherwise take a fresh address for every try. Anything else is returned as it is.
 */
export function addressBlockOf(address: string): string {
  const plain = unmapped(address);
  if (!isIPv6(plain)) {
    return plain;
  }
  return `${ipv6Groups(plain).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, in lowercase hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  const [head, tail] = address.split('%')[0].split('::');
  const groupsOf = (part: string | undefined) =>
    part ? part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : [];
  const left = groupsOf(head);
  const right = groupsOf(tail);
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => parseInt(group, 16).toString(16));
}
