import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which test a fixture call comes from. A test that timed out keeps running: its body may call
 * the fixture after afterEach, even during the next test. afterEach moves the generation on
 * (`next`); a test's first call marks its code's async context with the generation of the time
 * (`ofCaller`), which whatever that code does next inherits, even once the test has timed out.
 * Each test and hook runs in a context of its own: a mark made in one never reaches the next.
 */
export class TestGeneration {
  private value = 0;
  private readonly context = new AsyncLocalStorage<number>();

  get current(): number {
    return this.value;
  }

  /** From afterEach: calls of the test that ended are an older generation's from now on. */
  next(): void {
    this.value += 1;
  }

  /** The generation of the test the caller's code belongs to. */
  ofCaller(): number {
    const marked = this.context.getStore();
    if (marked !== undefined) {
      return marked;
    }
    this.context.enterWith(this.value);
    return this.value;
  }
}
