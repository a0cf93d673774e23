/** The store could not be reached in time: callers answer 503, never 500, and never hang. */
export class StoreUnavailableError extends Error {
  constructor (cause: unknown) {
    super('the store is unavailable', { cause })
    this.name = 'StoreUnavailableError'
  }
}
