import { HeldSeats } from './held-seats.js';

describe('HeldSeats', () => {
  it('lets each seat go when its own grace ends, not when a later drop holds more', () => {
    const seats = new HeldSeats(10);
    seats.hold(['host-room'], 1000);
    // The user came back and dropped again, twice, without taking the first seat back.
    seats.hold([], 1500);
    seats.hold(['other'], 2000);
    expect(seats.nextDeadline()).toBe(1000);
    expect(seats.lastDeadline()).toBe(2000);
    expect(seats.takeDue(999)).toEqual([]);
    expect(seats.takeDue(1000)).toEqual(['host-room']);
    expect(seats.roomIds()).toEqual(['other']);
    expect(seats.nextDeadline()).toBe(2000);
    expect(seats.takeDue(2000)).toEqual(['other']);
    expect(seats.nextDeadline()).toBeUndefined();
  });

  it('gives a seat held again the new grace', () => {
    const seats = new HeldSeats(10);
    seats.hold(['a', 'b'], 1000);
    seats.hold(['a'], 3000);
    expect(seats.takeDue(1000)).toEqual(['b']);
    expect(seats.roomIds()).toEqual(['a']);
    expect(seats.nextDeadline()).toBe(3000);
  });

  it('holds at most `max` seats, letting the longest-held go first', () => {
    const seats = new HeldSeats(3);
    expect(seats.hold(['a', 'b', 'c'], 1000)).toEqual([]);
    // 'a' again counts as held last: 'b' and 'c' are the oldest now.
    expect(seats.hold(['d', 'a', 'e'], 2000)).toEqual(['b', 'c']);
    expect(seats.roomIds()).toEqual(['d', 'a', 'e']);
    expect(seats.size).toBe(3);
  });

  it('gives every seat up at once when cleared', () => {
    const seats = new HeldSeats(3);
    seats.hold(['a', 'b'], 1000);
    expect(seats.clear()).toEqual(['a', 'b']);
    expect(seats.size).toBe(0);
    expect(seats.lastDeadline()).toBeUndefined();
  });
});
