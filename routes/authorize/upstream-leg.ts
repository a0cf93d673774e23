import type { Static } from 'typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FlowRecord } from '../../lib/flows.js'
import { createPkcePair } from '../../lib/pkce.js'
import { scopeUnion } from '../../lib/scopes.js'
import { StoreFullError, StoreUnavailableError } from '../../lib/stores/index.js'
import { UpstreamError } from '../../lib/upstream-as/errors.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import type { GatewayContext } from '../../plugins/context.js'
import type { LoadFlow } from './browser-binding.js'
import { ClientRedirectError, PageError, type ClientReturn } from './errors.js'
import type { CallbackQuery } from './schema.js'

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
  ) => Promise<{ flow: FlowRecord, tokens: UpstreamTokens }>
}

export function createUpstreamLeg (deps: {
  flows: GatewayContext['flows']
  upstream: GatewayContext['upstream']
  scopeNeeds: GatewayContext['scopeNeeds']
  events: GatewayContext['events']
  /** The callback's flow must be this browser's, like every other step's. */
  loadFlow: LoadFlow
}): UpstreamLeg {
  const { flows, upstream, scopeNeeds, events, loadFlow } = deps

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
      const state = await flows.beginUpstream(flow, verifier)
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
  ): Promise<{ flow: FlowRecord, tokens: UpstreamTokens }> {
    const expired = () => new PageError(
      400,
      'This sign-in has expired',
      'It was already completed, or took too long. Start again from your MCP client.'
    )
    if (query.state === undefined) throw expired()
    const pending = await flows.peekUpstream(query.state)
    if (pending === undefined) throw expired()
    const loaded = await loadFlow(req, pending.flowId)
    // Only now, with the browser checked, is the state used up; a second callback finds nothing.
    if (await flows.takeUpstream(query.state) === undefined) throw expired()
    const { flow } = loaded
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
    try {
      const tokens = await upstream.exchangeCode({ code: query.code, codeVerifier: pending.verifier })
      return { flow, tokens }
    } catch (err) {
      upstreamFailed(err)
      req.log.error({ err: safeUpstreamError(err), clientId: flow.clientId }, 'upstream code exchange failed')
      throw upstreamFailure(flow, err)
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
