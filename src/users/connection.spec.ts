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
