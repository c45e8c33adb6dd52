import { LoadShedder } from './load-shedder.js';

/** The budget these tests give the shedder (POSE_SHED_TURN_MS). */
const TURN_BUDGET_MS = 100;

describe('LoadShedder', () => {
  let clock: number;
  let draw: number;
  let shedder: LoadShedder;

  beforeEach(() => {
    clock = 1000;
    draw = 0.5;
    shedder = new LoadShedder(
      TURN_BUDGET_MS,
      () => clock,
      () => draw,
    );
  });

  /** One event-loop turn: a broadcast starts it, `busyMs` later the flush ends it. */
  function turn(busyMs: number): boolean {
    const shed = shedder.shouldShed();
    clock += busyMs;
    shedder.endTurn();
    return shed;
  }

  it('sheds nothing while turns stay within the budget', () => {
    for (let i = 0; i < 50; i++) {
      expect(turn(TURN_BUDGET_MS)).toBe(false);
    }
    expect(shedder.shedRate()).toBe(0);
  });

  it('ignores up to two long turns in a row, such as a garbage collection pause', () => {
    turn(TURN_BUDGET_MS * 5);
    turn(TURN_BUDGET_MS * 5);
    turn(1);
    turn(TURN_BUDGET_MS * 5);
    turn(TURN_BUDGET_MS * 5);
    expect(shedder.shedRate()).toBe(0);
  });

  it('sheds a growing share while turns keep running over, up to 95%', () => {
    for (let i = 0; i < 3; i++) {
      turn(TURN_BUDGET_MS * 3);
    }
    expect(shedder.shedRate()).toBeCloseTo(0.1);
    for (let i = 0; i < 30; i++) {
      turn(TURN_BUDGET_MS * 3);
    }
    expect(shedder.shedRate()).toBeCloseTo(0.95);
  });

  it('drops a broadcast when the random draw falls below the rate', () => {
    for (let i = 0; i < 7; i++) {
      turn(TURN_BUDGET_MS * 3);
    }
    expect(shedder.shedRate()).toBeCloseTo(0.5);
    draw = 0.49;
    expect(shedder.shouldShed()).toBe(true);
    draw = 0.51;
    expect(shedder.shouldShed()).toBe(false);
  });

  it('recovers by itself once turns are short again, idle turns included', () => {
    for (let i = 0; i < 12; i++) {
      turn(TURN_BUDGET_MS * 3);
    }
    expect(shedder.shedRate()).toBeGreaterThan(0.9);
    for (let i = 0; i < 10; i++) {
      turn(1);
    }
    expect(shedder.shedRate()).toBeCloseTo(0.45);
    for (let i = 0; i < 10; i++) {
      shedder.endTurn(); // a turn with no broadcast at all
    }
    expect(shedder.shedRate()).toBe(0);
  });
});
