import type { Static } from 'typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FlowRecord } from '../../lib/flows.js'
import { createPkcePair } from '../../lib/pkce.js'
import { scopeUnion } from '../../lib/scopes.js'
import { StoreFullError, StoreUnavailableError } from '../../lib/stores/index.js'
import { UpstreamError } from '../../lib/upstream-as/errors.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import type { GatewayContext } from '../../plugins/context.js'
import type { ReturnToFlow } from './browser-binding.js'
import { ClientRedirectError, PageError, type ClientReturn } from './errors.js'
import type { CallbackQuery } from './schema.js'
import {
  fetchUpstreamIdentity,
  githubTokenRevoker,
  identityAllowed,
  restricts,
  type IdentityPolicy,
  type UpstreamIdentity
} from '../../lib/upstream-identity.js'

/**
 * Screen 2 of the chain: going to the upstream's authorize page with the gateway's own PKCE pair and a
 * fresh single-use state, and coming back to /upstream/callback with the upstream's tokens.
 */
export interface UpstreamLeg {
  /** What to ask the upstream for: the configured scopes, plus any the user turned out to need (step-up). */
  upstreamScopes: (flow: FlowRecord) => Promise<string[]>
  /** The upstream's scopes; a 502 PageError when the upstream is unreachable or misconfigured. */
  resolveUpstream: (req: FastifyRequest, flow: FlowRecord) => Promise<string[]>
  /**
   * Redirects to the upstream's own authorize page, reached only after sign-in and consent; `scopes` when
   * already resolved in this request.
   */
  goUpstream: (req: FastifyRequest, reply: FastifyReply, flow: FlowRecord, scopes?: string[]) => Promise<FastifyReply>
  /**
   * The callback's flow (now finished) and the upstream's tokens for its code; anything else is thrown, as
   * an error page before the flow is known and a redirect to the client after.
   */
  returnFromUpstream: (
    req: FastifyRequest,
    query: Static<typeof CallbackQuery>
  ) => Promise<{ flow: FlowRecord, tokens: UpstreamTokens, identity: UpstreamIdentity | undefined }>
}

/** Where to ask who signed in upstream, and who may (lib/upstream-identity.ts). */
export interface IdentityCheck extends IdentityPolicy {
  /** Undefined: the upstream is not asked, and nobody is refused. */
  userEndpoint: string | undefined
  timeoutMs: number
}

export function createUpstreamLeg (deps: {
  flows: GatewayContext['flows']
  upstream: GatewayContext['upstream']
  scopeNeeds: GatewayContext['scopeNeeds']
  events: GatewayContext['events']
  /** The callback's flow must be this browser's, like every other step's. */
  returnToFlow: ReturnToFlow
  identity: IdentityCheck
}): UpstreamLeg {
  const { flows, upstream, scopeNeeds, events, returnToFlow, identity: check } = deps
  const revokeToken = githubTokenRevoker(check.userEndpoint, upstream, check.timeoutMs)

  async function upstreamScopes (flow: FlowRecord): Promise<string[]> {
    const { scopes } = await upstream.resolve()
    return flow.userId === undefined ? scopes : scopeUnion(scopes, await scopeNeeds.get(flow.userId))
  }

  async function resolveUpstream (req: FastifyRequest, flow: FlowRecord): Promise<string[]> {
    try {
      return await upstreamScopes(flow)
    } catch (err) {
      throw upstreamUnavailable(req, flow, err)
    }
  }

  async function goUpstream (
    req: FastifyRequest,
    reply: FastifyReply,
    flow: FlowRecord,
    scopes?: string[]
  ): Promise<FastifyReply> {
    const { verifier, challenge } = createPkcePair()
    let target: string
    try {
      const state = await flows.beginLeg('upstream', flow, { verifier })
      target = await upstream.authorizeUrl({
        state,
        codeChallenge: challenge,
        scopes: scopes ?? await upstreamScopes(flow)
      })
    } catch (err) {
      throw upstreamUnavailable(req, flow, err)
    }
    flow.approved = true
    await flows.save(flow)
    return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect(target, 303)
  }

  async function returnFromUpstream (
    req: FastifyRequest,
    query: Static<typeof CallbackQuery>
  ): Promise<{ flow: FlowRecord, tokens: UpstreamTokens, identity: UpstreamIdentity | undefined }> {
    const { flow, pending } = await returnToFlow(req, 'upstream', query.state)
    await flows.finish(flow.id)

    if (query.error !== undefined) {
      req.log.info(
        { clientId: flow.clientId, upstreamError: query.error.slice(0, 64) },
        'upstream authorization refused'
      )
      throw query.error === 'access_denied'
        ? new ClientRedirectError(flow, 'access_denied', 'access was denied at the upstream authorization server')
        : new ClientRedirectError(flow, 'server_error', 'the upstream authorization server returned an error')
    }
    if (query.code === undefined) {
      throw new ClientRedirectError(flow, 'server_error', 'the upstream authorization server returned no code')
    }
    let tokens: UpstreamTokens
    try {
      tokens = await upstream.exchangeCode({ code: query.code, codeVerifier: pending.verifier })
    } catch (err) {
      upstreamFailed(err)
      req.log.error({ err: safeUpstreamError(err), clientId: flow.clientId }, 'upstream code exchange failed')
      throw upstreamFailure(flow, err)
    }
    return { flow, tokens, identity: await identify(req, flow, tokens) }
  }

  /**
   * Who signed in upstream, when the upstream can say; a person the allow-lists leave out gets a page and no
   * gateway code. Without allow-lists an upstream that cannot say is no reason to fail the sign-in.
   */
  async function identify (
    req: FastifyRequest,
    flow: FlowRecord,
    tokens: UpstreamTokens
  ): Promise<UpstreamIdentity | undefined> {
    if (check.userEndpoint === undefined) return undefined
    let identity: UpstreamIdentity
    try {
      identity = await fetchUpstreamIdentity(check.userEndpoint, tokens.accessToken, {
        withOrgs: check.allowedOrgs.length > 0,
        timeoutMs: check.timeoutMs
      })
    } catch (err) {
      upstreamFailed(err)
      req.log.warn({ err: safeUpstreamError(err), clientId: flow.clientId }, 'upstream identity unavailable')
      if (!restricts(check)) return undefined
      throw new PageError(
        502,
        'Could not check who you are',
        `The gateway could not ask ${upstream.displayName} who you are, which it must before letting you in. ` +
          'Try again in a minute; if it persists, tell the gateway\'s operator.'
      )
    }
    if (!identityAllowed(identity, check)) {
      const who = { clientId: flow.clientId, userId: flow.userId, upstreamUser: identity.login }
      req.log.warn({ ...who, upstreamTokenRevoked: await revokeRefused(req, tokens) },
        'upstream user not allowed')
      throw new PageError(
        403,
        'Not allowed',
        `You are signed in to ${upstream.displayName} as ${identity.login}, who may not use this gateway. ` +
          `Ask its operator to allow you, or sign in to ${upstream.displayName} as someone else.`
      )
    }
    return identity
  }

  /** The refused person's upstream token is of no use to anyone: revoked upstream when the upstream allows it. */
  async function revokeRefused (req: FastifyRequest, tokens: UpstreamTokens): Promise<boolean> {
    try {
      return await revokeToken?.(tokens.accessToken) ?? false
    } catch (err) {
      req.log.warn({ err: safeUpstreamError(err) }, 'upstream token revocation failed')
      return false
    }
  }

  /**
   * The 502 page for an upstream that cannot be reached or resolved. Our own store failing (or full) on
   * the way is not the upstream's: it stays as it is, for the error handler's 503.
   */
  function upstreamUnavailable (req: FastifyRequest, flow: FlowRecord, err: unknown): Error {
    if (err instanceof StoreUnavailableError || err instanceof StoreFullError) return err
    upstreamFailed(err)
    req.log.error({ err: safeUpstreamError(err), clientId: flow.clientId }, 'upstream unavailable')
    return new PageError(
      502,
      'The upstream service is unavailable',
      `The gateway could not reach ${upstream.displayName}. ` +
        "Try again in a minute; if it persists, tell the gateway's operator."
    )
  }

  /** Counts an upstream failure by kind (the caller logs it); anything else (the store) is not the upstream's. */
  function upstreamFailed (err: unknown): void {
    if (err instanceof UpstreamError) events.emit('upstream_error', { kind: err.kind })
  }

  return { upstreamScopes, resolveUpstream, goUpstream, returnFromUpstream }
}

/** How an upstream failure reads to the client: retry later, or a plain server error. */
function upstreamFailure (back: ClientReturn, err: unknown): ClientRedirectError {
  if (err instanceof UpstreamError && (err.kind === 'unreachable' || err.kind === 'timeout')) {
    return new ClientRedirectError(back, 'temporarily_unavailable', 'the upstream authorization server is unavailable')
  }
  return new ClientRedirectError(back, 'server_error', 'the upstream authorization server refused the code exchange')
}

/** What of an upstream failure may be logged: its kind and OAuth error, never a body or a token. */
function safeUpstreamError (err: unknown): Record<string, unknown> {
  if (err instanceof UpstreamError) {
    return { kind: err.kind, oauthError: err.oauthError, status: err.status, message: err.message }
  }
  return { message: err instanceof Error ? err.message : String(err) }
}
