import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import type { ClientRecord } from '../../lib/clients.js'
import type { FlowRecord } from '../../lib/flows.js'
import { SsoError, type SsoLogin } from '../../lib/login-sso.js'
import type { GatewayContext } from '../../plugins/context.js'
import type { ReturnToFlow } from './browser-binding.js'
import { PageError } from './errors.js'
import type { SsoCallbackQuery } from './schema.js'

/**
 * Screen 1 by single sign-on: from the login page's button to the provider with a fresh state (bound to the flow,
 * single use, holding the PKCE verifier and the nonce), and back to /login/sso/callback, only in the browser that
 * started the flow. The person is then the provider's verified email address.
 */
export interface SsoLeg {
  goToProvider: (reply: FastifyReply, flow: FlowRecord) => Promise<FastifyReply>
  /** The flow and client of a callback, and the verified address it signs in; anything else is an error page. */
  returnFromProvider: (
    req: FastifyRequest,
    query: Static<typeof SsoCallbackQuery>
  ) => Promise<{ flow: FlowRecord, client: ClientRecord, email: string }>
}

/**
 * The browser's way to the provider, for screen 1 and the account page alike; a provider that cannot be reached
 * (discovery) becomes the caller's error page through `toPage`.
 */
export async function redirectToProvider (
  reply: FastifyReply,
  sso: SsoLogin,
  state: string,
  secrets: ReturnType<SsoLogin['secrets']>,
  toPage: (err: unknown) => Error
): Promise<FastifyReply> {
  let target: string
  try {
    target = await sso.authorizationUrl(state, secrets)
  } catch (err) {
    throw toPage(err)
  }
  return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect(target, 303)
}

export function createSsoLeg (deps: {
  sso: SsoLogin
  flows: GatewayContext['flows']
  /** The callback URL as the provider knows it: the query is added to it, never the request's own host. */
  callbackUrl: string
  returnToFlow: ReturnToFlow
}): SsoLeg {
  const { sso, flows, callbackUrl, returnToFlow } = deps

  async function goToProvider (reply: FastifyReply, flow: FlowRecord): Promise<FastifyReply> {
    const secrets = sso.secrets()
    return await redirectToProvider(reply, sso, await flows.beginLeg('sso', flow, secrets), secrets, pageFor)
  }

  async function returnFromProvider (
    req: FastifyRequest,
    query: Static<typeof SsoCallbackQuery>
  ): Promise<{ flow: FlowRecord, client: ClientRecord, email: string }> {
    const { state, pending, flow, client } = await returnToFlow(req, 'sso', query.state)
    if (query.error !== undefined) {
      req.log.info({ clientId: flow.clientId, ssoError: query.error.slice(0, 64) }, 'single sign-on refused')
      throw new PageError(403, 'Sign-in refused',
        `${sso.displayName} did not sign you in. Start again from your MCP client.`)
    }
    const search = new URL(req.url, 'http://gateway').search
    let email: string
    try {
      // The sso leg's states are written with a nonce (goToProvider), and the records check says so.
      const secrets = { verifier: pending.verifier, nonce: pending.nonce as string }
      email = await sso.finish(new URL(callbackUrl + search), state, secrets)
    } catch (err) {
      req.log.warn({ clientId: flow.clientId, detail: (err as Error).message }, 'single sign-on failed')
      throw pageFor(err)
    }
    return { flow, client, email }
  }

  return { goToProvider, returnFromProvider }
}

function pageFor (err: unknown): Error {
  if (!(err instanceof SsoError)) return err as Error
  return err.status === 403
    ? new PageError(403, 'Not allowed', `${err.message}. Ask the gateway's operator to allow you, or sign in as ` +
      'someone else.')
    : new PageError(502, 'Single sign-on unavailable', `${err.message}. Try again in a minute; if it persists, tell ` +
      "the gateway's operator.")
}
