/** Milliseconds since the epoch. Injected everywhere so tests can move time without sleeping. */
export interface Clock {
  now (): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock that only moves when told to: for tests and benchmarks. */
export class ManualClock implements Clock {
  #now: number

  constructor (start = Date.UTC(2026, 0, 1)) {
    this.#now = start
  }

  now (): number {
    return this.#now
  }

  advance (ms: number): void {
    this.#now += ms
  }
}
