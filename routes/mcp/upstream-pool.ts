import { Pool } from 'undici'
import type { Clock } from '../../lib/clock.js'

/**
 * Fewer exchanges than this at once is steady traffic, not a burst: keeping a few idle clients costs less than
 * reconnecting.
 */
const BURST_MIN = 64
/**
 * How long a pool must stay well below its burst before it is replaced: a lull between two bursts is not the end of
 * one.
 */
export const QUIET_PERIOD_MS = 30_000

/**
 * The connections to the upstream MCP server: one undici Pool at a time, replaced after a burst. The proxy caps
 * its connections at the exchanges it lets open at once (every open event stream holds one), so none waits for
 * a connection; a replacing pool gets the same options, and exchanges still finishing on a replaced one count
 * against the proxy's cap, not the new pool's.
 *
 * A Pool keeps every Client it ever made, with its socket when it has one. After a burst of event streams
 * that come and go, that is about 3 KB of heap per stream for the life of the process, for every full
 * collection to walk again; and when clients leave, undici (nodejs/undici#5845, fix proposed in #5846) reconnects
 * each aborted client and leaves the new socket open and idle, without a keep-alive timer: after 1,000
 * streams whose clients left, 1,000 connections and 6 MB stay (bench/HISTORY.md).
 *
 * So the pool counts its exchanges in flight, in periods of QUIET_PERIOD_MS. Once it has held at least
 * BURST_MIN at once, a whole period in which it never needed more than a quarter of that ends it: the next
 * exchange goes to a fresh Pool, and the old one closes. It lets what still runs on it finish (an event stream
 * ends when its client or the upstream ends it), closes every connection it has, idle ones included, and lets
 * go of its clients. The check runs when an exchange starts, so a gateway nobody calls keeps its pool.
 * After a burst of 1,000 streams whose clients left, one plain Pool holds 4.2 KB more per stream than the
 * rotated one (bench/README.md, ablation e).
 */
export class UpstreamPool {
  readonly #origin: string
  readonly #options: Pool.Options
  readonly #clock: Clock
  readonly #onReplace: ((peak: number) => void) | undefined
  #pool: Pool
  #inFlight = 0
  /** The most exchanges at once on the current pool: about how many clients it keeps. */
  #held = 0
  /** The most exchanges at once in the current period. */
  #recent = 0
  #periodStart: number
  /** Replaced pools still finishing their exchanges, for destroy(). */
  readonly #retiring = new Set<Pool>()

  /** `onReplace`: told the burst's peak each time a pool is replaced. */
  constructor (
    origin: string,
    options: Pool.Options,
    { clock, onReplace }: { clock: Clock, onReplace?: (peak: number) => void }
  ) {
    this.#origin = origin
    this.#options = options
    this.#clock = clock
    this.#onReplace = onReplace
    this.#pool = new Pool(origin, options)
    this.#periodStart = clock.now()
  }

  /** The pool for one more exchange, counted in flight until it is handed back to `release()`. */
  acquire (): Pool {
    const now = this.#clock.now()
    if (now - this.#periodStart >= QUIET_PERIOD_MS) this.#endPeriod(now)
    if (++this.#inFlight > this.#recent) {
      this.#recent = this.#inFlight
      if (this.#recent > this.#held) this.#held = this.#recent
    }
    return this.#pool
  }

  /** An exchange on `pool` has ended or failed: once per `acquire()`. */
  release (pool: Pool): void {
    // Exchanges of a replaced pool end with it; only the current one is counted.
    if (pool === this.#pool) this.#inFlight--
  }

  /** Ends every connection at once, the exchanges on them included: for shutdown. */
  async destroy (): Promise<void> {
    await Promise.all([this.#pool, ...this.#retiring].map(async (pool) => { await pool.destroy() }))
  }

  #endPeriod (now: number): void {
    if (this.#held >= BURST_MIN && this.#recent <= this.#held / 4) this.#replace()
    this.#recent = this.#inFlight
    this.#periodStart = now
  }

  #replace (): void {
    const old = this.#pool
    const peak = this.#held
    this.#retiring.add(old)
    this.#pool = new Pool(this.#origin, this.#options)
    this.#inFlight = 0
    this.#held = 0
    this.#onReplace?.(peak)
    // close() fails only if destroy() came first, which ends the same way.
    old.close().catch(() => {}).finally(() => { this.#retiring.delete(old) })
  }
}
