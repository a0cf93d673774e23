import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import { hashSecret, randomToken, safeEqual } from '../../lib/crypto.js'
import { SsoError, type SsoLogin } from '../../lib/login-sso.js'
import { StoreFullError } from '../../lib/stores/errors.js'
import type { Store } from '../../lib/stores/types.js'
import type { SsoCallbackQuery } from '../authorize/schema.js'
import { redirectToProvider } from '../authorize/sso-leg.js'

/** What the account page keeps while the browser is at the provider: whose browser, and the sign-in's secrets. */
interface AccountSsoState {
  /** Hash of the browser's sign-in cookie value (the sign-in form's CSRF token): only that browser comes back. */
  browserHash: string
  verifier: string
  nonce: string
}

/** A refusal the account page shows as a page of its own: status, title, message. */
export class AccountPageError extends Error {
  readonly status: number
  readonly title: string

  constructor (status: number, title: string, message: string) {
    super(message)
    this.name = 'AccountPageError'
    this.status = status
    this.title = title
  }
}

/**
 * The account page's sign-in by single sign-on: to the provider with a fresh state (single use, bound to this
 * browser's sign-in cookie, holding the PKCE verifier and the nonce), and back to the account page's own callback,
 * `<public-url>/account/sso/callback` (the provider must allow it besides the sign-in chain's). The person is the
 * provider's verified email address, allowed by the same lists as screen 1's.
 */
export function createAccountSsoLeg (deps: {
  sso: SsoLogin
  store: Store
  /** As the provider knows it: the query is added to it, never the request's own host. */
  callbackUrl: string
  ttlMs: number
  maxPending: number
}) {
  const { sso, store, callbackUrl, ttlMs, maxPending } = deps
  const stateKey = (state: string): string => `account-sso-state:${hashSecret(state)}`

  /** `browser`: the value of the sign-in cookie, which the callback must bring back. */
  async function goToProvider (reply: FastifyReply, browser: string): Promise<FastifyReply> {
    const secrets = sso.secrets()
    const state = randomToken()
    const record: AccountSsoState = { browserHash: hashSecret(browser), ...secrets }
    if (!await store.add(stateKey(state), record, ttlMs, maxPending)) throw new StoreFullError('account-sso-state')
    return await redirectToProvider(reply, sso, state, secrets, pageFor)
  }

  /** The verified address a callback signs in, from the browser that left; an AccountPageError otherwise. */
  async function returnFromProvider (
    req: FastifyRequest,
    query: Static<typeof SsoCallbackQuery>,
    browser: string | undefined
  ): Promise<string> {
    const expired = new AccountPageError(400, 'This sign-in has expired',
      'It took too long or was already completed. Sign in again.')
    if (query.state === undefined) throw expired
    const key = stateKey(query.state)
    const pending = await store.get<AccountSsoState>(key)
    if (pending === undefined) throw expired
    if (browser === undefined || !safeEqual(hashSecret(browser), pending.browserHash)) {
      req.log.info('account: single sign-on came back to another browser')
      throw new AccountPageError(403, 'Wrong browser',
        'This sign-in was started in another browser (or cookies are blocked). Sign in again, in this browser.')
    }
    // Only now, with the browser checked, is the state used up.
    if (await store.take(key) === undefined) throw expired
    if (query.error !== undefined) {
      req.log.info({ ssoError: query.error.slice(0, 64) }, 'account: single sign-on refused')
      throw new AccountPageError(403, 'Sign-in refused', `${sso.displayName} did not sign you in.`)
    }
    const search = new URL(req.url, 'http://gateway').search
    try {
      return await sso.finish(new URL(callbackUrl + search), query.state, pending)
    } catch (err) {
      req.log.warn({ detail: (err as Error).message }, 'account: single sign-on failed')
      throw pageFor(err)
    }
  }

  return { goToProvider, returnFromProvider }
}

function pageFor (err: unknown): Error {
  if (!(err instanceof SsoError)) return err as Error
  return err.status === 403
    ? new AccountPageError(403, 'Not allowed', `${err.message}. Ask the gateway's operator to allow you.`)
    : new AccountPageError(502, 'Single sign-on unavailable', `${err.message}. Try again in a minute.`)
}
