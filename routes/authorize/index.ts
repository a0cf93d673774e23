import { fastifyCookie } from '@fastify/cookie'
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ClientRecord } from '../../lib/clients.js'
import { randomToken, safeEqual } from '../../lib/crypto.js'
import type { FlowRecord } from '../../lib/flows.js'
import { PAGE_HEADERS } from '../../lib/html.js'
import type { LoginRefusal } from '../../lib/login-limits.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { createPkcePair, S256_CHALLENGE_PATTERN } from '../../lib/pkce.js'
import { isLoopbackRedirectUri, matchRedirectUri, redirectHost } from '../../lib/redirect-uri.js'
import { resolveResource } from '../../lib/resource.js'
import { scopeUnion } from '../../lib/scopes.js'
import { StoreFullError, StoreUnavailableError } from '../../lib/stores/index.js'
import { UpstreamError } from '../../lib/upstream-as/errors.js'
import type { GatewayContext } from '../../plugins/context.js'
import { classifyRequestError, type RequestErrorKind } from '../request-errors.js'
import { ClientRedirectError, PageError, type ClientReturn } from './errors.js'
import { consentPage, errorPage, loginPage, type FlowView } from './pages.js'
import { AuthorizeQuery, CallbackQuery, ConsentBody, FlowQuery, LoginBody } from './schema.js'

const challengeFormat = new RegExp(S256_CHALLENGE_PATTERN)

/** What each kind of failed request tells the person in the browser. */
const ERROR_PAGES: Readonly<Record<RequestErrorKind, { title: string, message: string }>> = {
  rate_limited: { title: 'Too many attempts', message: 'Wait a minute, then try again.' },
  body_too_large: {
    title: 'Request too large',
    message: 'What was sent is too large for a sign-in form. Start again from your MCP client.'
  },
  unsupported_media_type: {
    title: 'Unsupported request',
    message: 'These pages accept only their own HTML form. Start again from your MCP client.'
  },
  malformed: {
    title: 'Invalid request',
    message: 'The request to sign in is malformed. Start again from your MCP client.'
  },
  client_error: {
    title: 'Request refused',
    message: 'The gateway cannot handle this request. Start again from your MCP client.'
  },
  store_unavailable: {
    title: 'Temporarily unavailable',
    message: 'The gateway cannot reach its storage right now. Try again in a moment.'
  },
  store_full: {
    title: 'The gateway is busy',
    message: 'Too many sign-ins are in progress right now. Try again in a moment.'
  },
  bug: {
    title: 'Something went wrong',
    message: 'The gateway could not complete this step. Start again from your MCP client.'
  }
}

/**
 * The two-screen authorization chain.
 *
 *   GET  /authorize          check client + redirect URI (error page until both are trusted), then
 *                            everything else (errors go back to the client); start a flow bound to
 *                            this browser by a signed cookie → /login
 *   GET  /login, POST /login the gateway's own sign-in (screen 1)
 *   GET  /consent, POST      per-client consent, skipped when remembered (never the sign-in)
 *   → upstream authorize     with the gateway's own PKCE pair and a fresh single-use state (screen 2)
 *   GET  /upstream/callback  only that state, only from that browser; exchange the upstream code,
 *                            mint the gateway's code → client redirect_uri?code&state&iss
 */
const authorize: FastifyPluginAsyncTypebox = async (app) => {
  const gateway = app.getDecorator<GatewayContext>('mcpGateway')
  const { options, urls, clients, grants, upstream, flows, consents, loginLimits, scopeNeeds, events } = gateway
  const secure = urls.issuer.startsWith('https:')
  // __Host- (RFC 6265bis): Secure, Path=/, no Domain, so no sibling host can plant or read it.
  const cookieName = secure ? '__Host-mcp-gateway-browser' : 'mcp-gateway-browser'
  const loginPath = new URL(urls.login).pathname
  // Every route of the chain answers without a sign-in, so each is limited per client address (in Redis
  // when the store is, so across replicas).
  const config = { rateLimit: { max: options.rateLimitSignIn, timeWindow: 60_000 } }
  const consentPath = new URL(urls.consent).pathname

  // @fastify/cookie's signer only, not the plugin: its decorators would clash with a host app that
  // registered the plugin itself. The first secret signs, all verify (rotation).
  const signer = fastifyCookie.signerFactory(options.secrets)
  // The login and consent forms post form bodies, and nothing else is accepted here.
  app.removeAllContentTypeParsers()
  await app.register(formbody, { bodyLimit: 16 * 1024 })

  // The chain's own errors were logged where they were thrown. Client mistakes are 4xx pages logged at info
  // (classifyRequestError, shared with the JSON routes): nobody needs to sign in to send them, so they
  // must not flood the error log.
  app.setErrorHandler(async (err: Error, req, reply) => {
    if (err instanceof ClientRedirectError) {
      const params = { error: err.error, error_description: err.description }
      return redirectToClient(reply, err.back, params, err.redirectStatus)
    }
    if (err instanceof PageError) return page(reply, err.status, err.title, err.message)
    const problem = classifyRequestError(err)
    if (problem.kind === 'bug') {
      req.log.error({ err }, 'authorization flow failed')
    } else {
      req.log[problem.logLevel](
        { problem: problem.kind, statusCode: problem.status, detail: err.message },
        'authorization request rejected'
      )
    }
    if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds))
    const { title, message } = ERROR_PAGES[problem.kind]
    return page(reply, problem.status, title, message)
  })

  app.get('/authorize', { config, schema: { querystring: AuthorizeQuery } }, async (req, reply) => {
    const q = req.query
    const client = await clients.find(q.client_id)
    if (client === undefined) {
      req.log.info({ clientId: q.client_id.slice(0, 64) }, 'authorize: unknown client')
      throw new PageError(
        400,
        'Unknown client',
        'This MCP client is not registered with the gateway (registrations expire when unused, and are lost when an in-memory gateway restarts). Remove and re-add the server in your client so it registers again.'
      )
    }
    const redirectUri = q.redirect_uri === undefined
      ? (client.metadata.redirect_uris.length === 1 ? client.metadata.redirect_uris[0] : undefined)
      : matchRedirectUri(client.metadata.redirect_uris, q.redirect_uri) === undefined ? undefined : q.redirect_uri
    if (redirectUri === undefined) {
      req.log.info({ clientId: client.clientId }, 'authorize: redirect_uri not registered')
      throw new PageError(
        400,
        'Invalid redirect URI',
        'The address this client asked to return to is not one it registered, so the gateway will not send anything there.'
      )
    }
    // From here on the redirect URI is trusted: errors go back to the client (OAuth 2.1 §4.1.2.1).
    const back: ClientReturn = { redirectUri, state: q.state }
    const fail = (error: string, description: string) => new ClientRedirectError(back, error, description)

    if (q.response_type !== 'code') throw fail('unsupported_response_type', 'response_type must be code')
    if (!client.metadata.grant_types.includes('authorization_code')) {
      throw fail('unauthorized_client', 'client may not use the authorization code grant')
    }
    if (q.code_challenge === undefined) throw fail('invalid_request', 'code_challenge is required (PKCE)')
    if (q.code_challenge_method !== 'S256') throw fail('invalid_request', 'code_challenge_method must be S256')
    if (!challengeFormat.test(q.code_challenge)) throw fail('invalid_request', 'code_challenge is malformed')
    let resource: string
    try {
      resource = resolveResource(q.resource, urls.resource)
    } catch (err) {
      throw fail('invalid_target', (err as OAuthError).description ?? 'invalid resource')
    }

    const browser = browserOf(req) ?? randomToken()
    const flow = await flows.create(browser, {
      clientId: client.clientId,
      redirectUri,
      ...(q.state === undefined ? {} : { state: q.state }),
      codeChallenge: q.code_challenge,
      resource,
      // The gateway grants one scope; what the client asked for beyond it is ignored (RFC 6749 §3.3).
      scope: options.mcpScope
    })
    // The name is ours and the value is base64url plus the signer's base64: nothing to encode.
    const cookie = `${cookieName}=${signer.sign(browser)}; Max-Age=${options.flowTtl}; Path=/; HttpOnly; SameSite=Lax`
    reply.header('set-cookie', `${cookie}${secure ? '; Secure' : ''}`)
    return reply.header('cache-control', 'no-store').redirect(`${loginPath}?flow=${flow.id}`, 302)
  })

  app.get('/login', { config, schema: { querystring: FlowQuery } }, async (req, reply) => {
    const loaded = await loadFlow(req, req.query.flow)
    return page(reply, 200, loginPage({
      action: loginPath,
      flowId: loaded.flow.id,
      csrf: loaded.flow.csrf,
      flow: await view(loaded.flow, loaded.client)
    }))
  })

  app.post('/login', { config, schema: { body: LoginBody } }, async (req, reply) => {
    const body = req.body
    const loaded = await loadFlow(req, body.flow, body.csrf)
    const { flow, client } = loaded
    // Credential guessing must be slow (OAuth 2.1 §2.4): failures, never successes, are counted, and an
    // address or user name over its limit is refused before its password is looked at.
    const refusal = await loginLimits.check(req.ip, body.username)
    if (refusal !== undefined) {
      const retryAfterSeconds = Math.ceil(refusal.retryAfterMs / 1000)
      events.emit('login_refused', { clientId: client.clientId, reason: refusal.reason, retryAfterSeconds }, req.log)
      reply.header('retry-after', String(retryAfterSeconds))
      if (refusal.reason === 'address') {
        return page(
          reply,
          429,
          'Too many failed sign-ins',
          `There have been too many failed sign-ins from your network. Try again in ${waitText(refusal)}.`
        )
      }
      return page(reply, 429, loginPage({
        action: loginPath,
        flowId: flow.id,
        csrf: flow.csrf,
        flow: await view(flow, client),
        username: body.username,
        error: `Too many failed sign-ins for this user name. Wait ${waitText(refusal)}, then try again.`
      }))
    }
    // Both comparisons always run, so the timing does not tell which one failed.
    const userOk = safeEqual(body.username, options.username)
    const passwordOk = safeEqual(body.password, options.password)
    if (!userOk || !passwordOk) {
      await loginLimits.recordFailure(req.ip, body.username)
      events.emit('login_failed', { clientId: client.clientId }, req.log)
      return page(reply, 401, loginPage({
        action: loginPath,
        flowId: flow.id,
        csrf: flow.csrf,
        flow: await view(flow, client),
        username: body.username,
        error: 'Wrong username or password.'
      }))
    }
    flow.userId = options.username
    await flows.save(flow)
    events.emit('login_succeeded', { clientId: client.clientId }, req.log)
    const scopes = await resolveUpstream(req, flow)
    if (await consents.covers(flow.userId, client.clientId, scopes)) {
      return await goUpstream(req, reply, flow, scopes)
    }
    return reply.redirect(`${consentPath}?flow=${flow.id}`, 303)
  })

  app.get('/consent', { config, schema: { querystring: FlowQuery } }, async (req, reply) => {
    const loaded = await loadFlow(req, req.query.flow)
    const { flow, client } = loaded
    if (flow.userId === undefined) return reply.redirect(`${loginPath}?flow=${flow.id}`, 303)
    const scopes = await resolveUpstream(req, flow)
    return page(reply, 200, consentPage({
      action: consentPath,
      flowId: flow.id,
      csrf: flow.csrf,
      flow: await view(flow, client, scopes),
      username: flow.userId
    }))
  })

  app.post('/consent', { config, schema: { body: ConsentBody } }, async (req, reply) => {
    const body = req.body
    const loaded = await loadFlow(req, body.flow, body.csrf)
    const { flow, client } = loaded
    if (flow.userId === undefined) return reply.redirect(`${loginPath}?flow=${flow.id}`, 303)
    if (body.decision === 'deny') {
      await flows.finish(flow.id)
      events.emit('consent_denied', { clientId: client.clientId }, req.log)
      throw new ClientRedirectError(flow, 'access_denied', 'the user denied access', 303)
    }
    let scopes: string[] | undefined
    if (body.remember === 'on') {
      scopes = await resolveUpstream(req, flow)
      await consents.remember(flow.userId, client.clientId, scopes)
    }
    events.emit('consent_given', { clientId: client.clientId, remembered: body.remember === 'on' }, req.log)
    return await goUpstream(req, reply, flow, scopes)
  })

  app.get('/upstream/callback', { config, schema: { querystring: CallbackQuery } }, async (req, reply) => {
    const q = req.query
    const expired = () => new PageError(
      400,
      'This sign-in has expired',
      'It was already completed, or took too long. Start again from your MCP client.'
    )
    if (q.state === undefined) throw expired()
    const pending = await flows.peekUpstream(q.state)
    if (pending === undefined) throw expired()
    const loaded = await loadFlow(req, pending.flowId)
    // Only now, with the browser checked, is the state used up; a second callback finds nothing.
    if (await flows.takeUpstream(q.state) === undefined) throw expired()
    const { flow } = loaded
    await flows.finish(flow.id)

    if (q.error !== undefined) {
      req.log.info({ clientId: flow.clientId, upstreamError: q.error.slice(0, 64) }, 'upstream authorization refused')
      throw q.error === 'access_denied'
        ? new ClientRedirectError(flow, 'access_denied', 'access was denied at the upstream authorization server')
        : new ClientRedirectError(flow, 'server_error', 'the upstream authorization server returned an error')
    }
    if (q.code === undefined) {
      throw new ClientRedirectError(flow, 'server_error', 'the upstream authorization server returned no code')
    }
    let tokens
    try {
      tokens = await upstream.exchangeCode({ code: q.code, codeVerifier: pending.verifier })
    } catch (err) {
      upstreamFailed(err)
      req.log.error({ err: safeUpstreamError(err), clientId: flow.clientId }, 'upstream code exchange failed')
      throw upstreamFailure(flow, err)
    }
    const code = await grants.createCode({
      clientId: flow.clientId,
      redirectUri: flow.redirectUri,
      codeChallenge: flow.codeChallenge,
      resource: flow.resource,
      scope: flow.scope,
      userId: flow.userId ?? options.username,
      upstream: tokens
    })
    events.emit('code_issued', { clientId: flow.clientId }, req.log)
    return redirectToClient(reply, flow, { code }, 302)
  })

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
      `The gateway could not reach ${upstream.displayName}. Try again in a minute; if it persists, tell the gateway's operator.`
    )
  }

  /** Counts an upstream failure by kind (the caller logs it); anything else (the store) is not the upstream's. */
  function upstreamFailed (err: unknown): void {
    if (err instanceof UpstreamError) events.emit('upstream_error', { kind: err.kind })
  }

  function browserOf (req: FastifyRequest): string | undefined {
    const raw = cookieValue(req.headers.cookie, cookieName)
    if (raw === undefined) return undefined
    const unsigned = signer.unsign(raw)
    return unsigned.valid && unsigned.value !== null ? unsigned.value : undefined
  }

  /**
   * The flow named by the request, if it exists, belongs to this browser and (for form posts) the CSRF
   * token matches; otherwise a PageError.
   */
  async function loadFlow (
    req: FastifyRequest,
    flowId: string,
    csrf?: string
  ): Promise<{ flow: FlowRecord, client: ClientRecord }> {
    const loaded = await flows.load(flowId, browserOf(req))
    if ('reason' in loaded) {
      req.log.info({ reason: loaded.reason }, 'authorization flow rejected')
      if (loaded.reason === 'expired') {
        throw new PageError(
          400,
          'This sign-in has expired',
          'It took too long or was already completed. Start again from your MCP client.'
        )
      }
      throw new PageError(
        403,
        'Wrong browser',
        'This sign-in was started in another browser (or cookies are blocked). Start again from your MCP client, in this browser.'
      )
    }
    if (csrf !== undefined && !flows.checkCsrf(loaded.flow, csrf)) {
      req.log.warn({ clientId: loaded.flow.clientId }, 'CSRF token mismatch')
      throw new PageError(
        403,
        'Request refused',
        'The form was not submitted from this sign-in page. Start again from your MCP client.'
      )
    }
    const client = await clients.find(loaded.flow.clientId)
    if (client === undefined) {
      throw new PageError(
        400,
        'Unknown client',
        'This MCP client is no longer registered with the gateway. Start again from your MCP client.'
      )
    }
    return { flow: loaded.flow, client }
  }

  /** The upstream's scopes; a 502 PageError when the upstream is unreachable or misconfigured. */
  async function resolveUpstream (req: FastifyRequest, flow: FlowRecord): Promise<string[]> {
    try {
      return await upstreamScopes(flow)
    } catch (err) {
      throw upstreamUnavailable(req, flow, err)
    }
  }

  /** What to ask the upstream for: the configured scopes, plus any the user turned out to need (step-up). */
  async function upstreamScopes (flow: FlowRecord): Promise<string[]> {
    const { scopes } = await upstream.resolve()
    return flow.userId === undefined ? scopes : scopeUnion(scopes, await scopeNeeds.get(flow.userId))
  }

  /**
   * Screen 2: the upstream's own authorize page, reached only after sign-in and consent; `scopes` when
   * already resolved in this request.
   */
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

  /** What the pages show; `scopes` when the upstream's are already resolved in this request. */
  async function view (flow: FlowRecord, client: ClientRecord, scopes?: string[]): Promise<FlowView> {
    return {
      clientName: client.metadata.client_name ?? '',
      clientId: client.clientId,
      redirectUri: flow.redirectUri,
      redirectHost: redirectHost(flow.redirectUri),
      localhostOnly: client.metadata.redirect_uris.every(isLoopbackRedirectUri),
      upstreamName: upstream.displayName,
      // Without them if the upstream cannot be resolved: the login page can show, the consent step resolves it again.
      upstreamScopes: scopes ?? await upstreamScopes(flow).catch(() => [])
    }
  }

  /** An authorization response (OAuth 2.1 §4.1.2) with `state` echoed and RFC 9207 `iss`. */
  function redirectToClient (
    reply: FastifyReply,
    back: ClientReturn,
    params: Record<string, string>,
    status: 302 | 303
  ): FastifyReply {
    const query = new URLSearchParams(params)
    if (back.state !== undefined) query.set('state', back.state)
    query.set('iss', urls.issuer)
    const separator = back.redirectUri.includes('?') ? '&' : '?'
    return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer')
      .redirect(`${back.redirectUri}${separator}${query.toString()}`, status)
  }
}

/**
 * One cookie's value from a Cookie header (RFC 6265 §5.4: `name=value` pairs separated by `; `). Not
 * @fastify/cookie's parse/serialize: they work only once that plugin is registered (it loads the ESM
 * `cookie` module then), and the gateway uses only its signer so a host's own registration never clashes.
 */
function cookieValue (header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}

function page (reply: FastifyReply, status: number, titleOrHtml: string, message?: string): FastifyReply {
  const body = message === undefined ? titleOrHtml : errorPage({ title: titleOrHtml, message })
  return reply.code(status).headers(PAGE_HEADERS).send(body)
}

/** A wait as a person reads it: seconds below a minute, whole minutes (rounded up) above. */
function waitText (refusal: LoginRefusal): string {
  const seconds = Math.ceil(refusal.retryAfterMs / 1000)
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`
  const minutes = Math.ceil(seconds / 60)
  return `${minutes} minute${minutes === 1 ? '' : 's'}`
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

export default authorize
