/** The store could not be reached in time: callers answer 503, never 500, and never hang. */
export class StoreUnavailableError extends Error {
  constructor (cause: unknown) {
    super('the store is unavailable', { cause })
    this.name = 'StoreUnavailableError'
  }
}

/**
 * A bounded kind of state (sign-ins in progress, unused registrations) is at its bound: the new record is
 * refused, and nothing live is evicted to make room. Routes answer 503 with Retry-After.
 */
export class StoreFullError extends Error {
  readonly kind: string

  constructor (kind: string) {
    super(`too many ${kind} records`)
    this.name = 'StoreFullError'
    this.kind = kind
  }
}

/** A stored value that is not JSON: the store read it, but it holds no record (checkedStore reads it as missing). */
export class MalformedRecordError extends Error {
  constructor (cause: unknown) {
    super('a stored value is not JSON', { cause })
    this.name = 'MalformedRecordError'
  }
}
