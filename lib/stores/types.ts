/**
 * The one storage interface every plugin shares. It is a small key-value contract so that a Redis
 * implementation (GET, SET PX, GETDEL, SET … GET) maps onto it one call per method.
 *
 * Values are plain JSON-serialisable objects. Every write carries a TTL: nothing lives forever.
 * Keys are built by the callers from hashes, never from raw secrets.
 */
export interface Store {
  get<T> (key: string): Promise<T | undefined>
  /** Writes `value` under `key`, expiring after `ttlMs`. */
  set<T> (key: string, value: T, ttlMs: number): Promise<void>
  /** Atomically reads and deletes (and uncounts, see add()): at most one caller gets the value (codes, flow states). */
  take<T> (key: string): Promise<T | undefined>
  /**
   * Atomically replaces the value and returns the previous one (or undefined when there was none).
   * Two concurrent callers each see a different previous value, which is how single use is detected
   * without losing the record (codes and refresh tokens keep a tombstone for reuse detection).
   */
  swap<T> (key: string, value: T, ttlMs: number): Promise<T | undefined>
  /**
   * Adds one to the counter under `key` and returns the new count; the first increment starts its `ttlMs`
   * (a fixed window: later increments do not extend it).
   */
  increment (key: string, ttlMs: number): Promise<number>
  /**
   * Writes `value` under `key` only while fewer than `max` records of the key's kind (the key up to its first
   * ':') written through add() are live, and counts it; false, writing nothing, when the kind is at its bound.
   * Nothing live is ever evicted to make room, so a flood of one kind cannot push out another. A count lasts
   * until the record expires (as its first `ttlMs` said), is deleted or taken, or is released.
   */
  add<T> (key: string, value: T, ttlMs: number, max: number): Promise<boolean>
  /** Stops counting `key` against its kind's bound (the record stays, with its TTL): it is no longer pending. */
  release (key: string): Promise<void>
  /**
   * Writes `value` under `key` only if a record is there whose `version` field (0 when it has none) is
   * `expectedVersion`: a writer that read a record replaces it only if nobody changed or deleted it since,
   * so a deletion (a revoked grant) is never undone by a write that was already in flight. True when written.
   */
  replace<T> (key: string, expectedVersion: number, value: T, ttlMs: number): Promise<boolean>
  /**
   * Takes the lock `key` for `ttlMs` unless someone holds it: the token to unlock() with, or undefined when
   * it is held. The TTL frees a lock whose holder died.
   */
  lock (key: string, ttlMs: number): Promise<string | undefined>
  /** Frees the lock if `token` still holds it (it may have expired and been taken by another). */
  unlock (key: string, token: string): Promise<void>
  /**
   * Sends `message` to every process subscribed to `channel` on this store, this one included. Absent
   * when the store lives in one process (memory), where there is nobody else to tell.
   */
  publish? (channel: string, message: string): Promise<void>
  /** Calls `listener` with each message published on `channel` from now on; resolves to a function that stops it. */
  subscribe? (channel: string, listener: (message: string) => void): Promise<() => Promise<void>>
  /** Deletes the record, and its count if add() wrote it. */
  delete (key: string): Promise<void>
  /** True when the store answers now (readiness). */
  ping (): Promise<boolean>
  close (): Promise<void>
}
