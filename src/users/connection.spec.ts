import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { Connection } from './connection.js';

describe('Connection.enableCapabilities (hello)', () => {
  const connection = () => new Connection('alice', {}, fakeClientLink());

  it('turns the binary channel on for binary_poses, full frames', () => {
    const alice = connection();
    expect(alice.enableCapabilities(['cursor', 'binary_poses'])).toEqual(['binary_poses']);
    expect(alice.binaryPoses).toBe(true);
    expect(alice.quantizedPoses).toBe(false);
  });

  it('turns the channel on in the quantized form for binary_poses_quantized alone', () => {
    const alice = connection();
    expect(alice.enableCapabilities(['binary_poses_quantized'])).toEqual([
      'binary_poses',
      'binary_poses_quantized',
    ]);
    expect(alice.binaryPoses).toBe(true);
    expect(alice.quantizedPoses).toBe(true);
  });

  it('never turns anything off: an empty hello answers what is on', () => {
    const alice = connection();
    alice.enableCapabilities(['binary_poses_quantized']);
    expect(alice.enableCapabilities([])).toEqual(['binary_poses', 'binary_poses_quantized']);
    expect(alice.enableCapabilities(['binary_poses'])).toEqual([
      'binary_poses',
      'binary_poses_quantized',
    ]);
    expect(alice.quantizedPoses).toBe(true);
  });

  it('leaves a connection without capabilities as it is', () => {
    const alice = connection();
    expect(alice.enableCapabilities(['cursor'])).toEqual([]);
    expect(alice.binaryPoses).toBe(false);
  });
});

describe('Connection.terminate (a dead heartbeat)', () => {
  /** A connection whose link stops being open once closed or terminated, and its counted codes. */
  function watched(): { connection: Connection; counted: number[]; terminated: () => number } {
    let open = true;
    let terminations = 0;
    const link = fakeClientLink({
      isOpen: () => open,
      close: () => void (open = false),
      terminate: () => {
        open = false;
        terminations += 1;
      },
    });
    const connection = new Connection('alice', {}, link);
    const counted: number[] = [];
    connection.onServerClose = (code) => counted.push(code);
    return { connection, counted, terminated: () => terminations };
  }

  it('counts the kill once as 1006, and leaves it a dropped connection (seats held)', () => {
    const { connection, counted, terminated } = watched();
    connection.terminate();
    connection.terminate();
    expect(counted).toEqual([1006]);
    expect(terminated()).toBe(2);
    expect(connection.closedByServer).toBe(false);
  });

  it('does not count a socket the server was already closing again', () => {
    const { connection, counted, terminated } = watched();
    connection.close(1008, 'Too many refused messages');
    connection.terminate();
    expect(counted).toEqual([1008]);
    expect(terminated()).toBe(1);
  });
});
