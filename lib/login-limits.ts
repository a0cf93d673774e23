import type { Clock } from './clock.js'
import { hashSecret } from './crypto.js'
import type { Store } from './stores/types.js'

/** Failures are counted in fixed 15-minute windows, aligned to the clock so every replica agrees on them. */
export const LOGIN_WINDOW_MS = 15 * 60_000
/** The first wait once a user name has had its share of failures; each further failure doubles it. */
export const FIRST_BACKOFF_MS = 1000
export const MAX_BACKOFF_MS = 15 * 60_000

/** Why a sign-in attempt is refused before its password is even looked at, and for how long. */
export interface LoginRefusal {
  /** `address`: too many failures from this client address; `user`: this user name is backing off. */
  reason: 'address' | 'user'
  retryAfterMs: number
}

export interface LoginLimitsOptions {
  store: Store
  clock: Clock
  /** Failures per address in one window before the address is refused until the window ends. */
  failuresPerAddress: number
  /** Failures for one user name in one window before each further attempt must wait. */
  failuresPerUser: number
  /**
   * Whether a user name exists (lib/accounts.ts). Only theirs are counted, so guessing random names cannot fill
   * the store (the per-address count still bounds such guessing).
   */
  knows: (username: string) => boolean
}

/** The window `now` falls in, and when it ends. */
export function loginWindow (now: number): { index: number, endsAt: number } {
  const index = Math.floor(now / LOGIN_WINDOW_MS)
  return { index, endsAt: (index + 1) * LOGIN_WINDOW_MS }
}

/**
 * How long after its latest failure a user name with `failures` failures in the window must wait:
 * nothing below the threshold, then 1 s, 2 s, 4 s … up to 15 minutes.
 */
export function userBackoffMs (failures: number, threshold: number): number {
  if (failures < threshold) return 0
  // 2^20 s is far above the cap already; the bound keeps the power finite.
  return Math.min(FIRST_BACKOFF_MS * 2 ** Math.min(failures - threshold, 20), MAX_BACKOFF_MS)
}

/** What the counters say now, read from the store. */
export interface LoginCounts {
  now: number
  addressFailures: number
  /** Undefined for a user name that does not exist (never counted). */
  userFailures?: number
  lastUserFailureAt?: number
}

/** The decision itself, from counts alone: undefined lets the attempt through to the password check. */
export function decideLogin (
  counts: LoginCounts,
  limits: { failuresPerAddress: number, failuresPerUser: number }
): LoginRefusal | undefined {
  if (counts.addressFailures >= limits.failuresPerAddress) {
    return { reason: 'address', retryAfterMs: loginWindow(counts.now).endsAt - counts.now }
  }
  if (counts.userFailures === undefined || counts.lastUserFailureAt === undefined) return undefined
  const waitUntil = counts.lastUserFailureAt + userBackoffMs(counts.userFailures, limits.failuresPerUser)
  if (counts.now < waitUntil) return { reason: 'user', retryAfterMs: waitUntil - counts.now }
  return undefined
}

/**
 * The sign-in limits: only failures count, per client address and per existing user name, in the
 * store (so across replicas) under hashed keys (never a raw address or name). A successful sign-in
 * counts nowhere, so an office behind one NAT address is never locked out by its own good logins.
 *
 * Checked before the password: a refused attempt is not verified and not counted, so the right password
 * during a backoff is refused too and the wait does not grow while the user waits it out. Replicas check
 * and count concurrently, so a burst sent at once may pass a few attempts beyond a limit; the next check
 * sees them all.
 */
export class LoginLimits {
  readonly #store: Store
  readonly #clock: Clock
  readonly #failuresPerAddress: number
  readonly #failuresPerUser: number
  readonly #knows: (username: string) => boolean

  constructor (options: LoginLimitsOptions) {
    this.#store = options.store
    this.#clock = options.clock
    this.#failuresPerAddress = options.failuresPerAddress
    this.#failuresPerUser = options.failuresPerUser
    this.#knows = options.knows
  }

  /** Whether an attempt from `address` for `username` may go on to the password check. */
  async check (address: string, username: string): Promise<LoginRefusal | undefined> {
    const now = this.#clock.now()
    const { index } = loginWindow(now)
    const known = this.#knows(username)
    const [addressFailures, userFailures, lastUserFailureAt] = await Promise.all([
      this.#store.get<number>(addressKey(address, index)),
      known ? this.#store.get<number>(userKey(username, index)) : undefined,
      known ? this.#store.get<number>(lastFailureKey(username)) : undefined
    ])
    return decideLogin({
      now,
      addressFailures: Number(addressFailures ?? 0),
      ...(userFailures === undefined ? {} : { userFailures: Number(userFailures) }),
      ...(lastUserFailureAt === undefined ? {} : { lastUserFailureAt })
    }, { failuresPerAddress: this.#failuresPerAddress, failuresPerUser: this.#failuresPerUser })
  }

  /** Counts a wrong user name or password from `address`; against the user name only if it exists. */
  async recordFailure (address: string, username: string): Promise<void> {
    const now = this.#clock.now()
    const { index, endsAt } = loginWindow(now)
    const left = endsAt - now
    const writes: Array<Promise<unknown>> = [this.#store.increment(addressKey(address, index), left)]
    if (this.#knows(username)) {
      writes.push(this.#store.increment(userKey(username, index), left))
      // The backoff runs from the latest failure, which may be up to MAX_BACKOFF_MS into the next window.
      writes.push(this.#store.set(lastFailureKey(username), now, LOGIN_WINDOW_MS + MAX_BACKOFF_MS))
    }
    await Promise.all(writes)
  }
}

function addressKey (address: string, window: number): string {
  return `login-failures:address:${hashSecret(address)}:${window}`
}

function userKey (username: string, window: number): string {
  return `login-failures:user:${hashSecret(username)}:${window}`
}

function lastFailureKey (username: string): string {
  return `login-failures:user-last:${hashSecret(username)}`
}
