import type { Clock } from './clock.js'
import { hashSecret, randomToken, safeEqual } from './crypto.js'
import { StoreFullError } from './stores/errors.js'
import type { Store } from './stores/types.js'

/** A person signed in to the account page (/account): who, the CSRF token of its forms, and until when. */
export interface AccountSession {
  userId: string
  csrf: string
  expiresAt: number
}

/**
 * Sign-ins to the account page: a random token in the browser's cookie, stored only as its hash, with a short
 * fixed lifetime (never extended). Anyone who knows a password can open one, so they are bounded like sign-ins in
 * progress: past `maxSessions` live at once a new one is refused (StoreFullError), and none is evicted.
 */
export class AccountSessions {
  readonly #store: Store
  readonly #clock: Clock
  readonly #ttlMs: number
  readonly #maxSessions: number

  constructor (deps: { store: Store, clock: Clock, ttlMs: number, maxSessions: number }) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#ttlMs = deps.ttlMs
    this.#maxSessions = deps.maxSessions
  }

  /** A new session for `userId`: the token for the cookie, and the session. */
  async create (userId: string): Promise<{ token: string, session: AccountSession }> {
    const token = randomToken()
    const session: AccountSession = { userId, csrf: randomToken(), expiresAt: this.#clock.now() + this.#ttlMs }
    if (!await this.#store.add(sessionKey(token), session, this.#ttlMs, this.#maxSessions)) {
      throw new StoreFullError('account-session')
    }
    return { token, session }
  }

  /** The session behind a cookie's token, while it lasts. */
  async load (token: string | undefined): Promise<AccountSession | undefined> {
    if (token === undefined || token === '') return undefined
    const session = await this.#store.get<AccountSession>(sessionKey(token))
    return session === undefined || session.expiresAt <= this.#clock.now() ? undefined : session
  }

  /** Signs out: the token opens nothing from now on. */
  async end (token: string): Promise<void> {
    await this.#store.delete(sessionKey(token))
  }

  /** Whether a form's CSRF token is the session's, compared in constant time. */
  checkCsrf (session: AccountSession, csrf: string): boolean {
    return safeEqual(csrf, session.csrf)
  }
}

const sessionKey = (token: string): string => `account-session:${hashSecret(token)}`
