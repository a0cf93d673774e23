import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ClientDocumentError } from '../../lib/client-document-fetch.js'
import { isClientIdUrl } from '../../lib/client-metadata-document.js'
import type { ClientRecord } from '../../lib/clients.js'
import { randomToken } from '../../lib/crypto.js'
import type { FlowRecord } from '../../lib/flows.js'
import { PAGE_HEADERS } from '../../lib/html.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { S256_CHALLENGE_PATTERN } from '../../lib/pkce.js'
import { isLoopbackRedirectUri, matchRedirectUri, redirectHost } from '../../lib/redirect-uri.js'
import { resolveResource } from '../../lib/resource.js'
import type { GatewayContext } from '../../plugins/context.js'
import { classifyRequestError, warnOncePerMinute } from '../request-errors.js'
import { createBrowserBinding } from './browser-binding.js'
import { ClientRedirectError, PageError, type ClientReturn } from './errors.js'
import { consentPage, ERROR_PAGES, errorPage, loginPage, refusalText, type FlowView } from './pages.js'
import {
  AuthorizeQuery,
  CallbackQuery,
  ConsentBody,
  FlowQuery,
  LoginBody,
  SsoBody,
  SsoCallbackQuery
} from './schema.js'
import { createSsoLeg } from './sso-leg.js'
import { createUpstreamLeg } from './upstream-leg.js'

const challengeFormat = new RegExp(S256_CHALLENGE_PATTERN)

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
 *
 * The routes below read as that chain; the cookie that binds a flow to its browser is browser-binding.ts,
 * going upstream and coming back is upstream-leg.ts.
 */
const authorize: FastifyPluginAsyncTypebox = async (app) => {
  const gateway = app.getDecorator<GatewayContext>('mcpGateway')
  const { options, urls, clients, grants, upstream, flows, consents, accounts, sso, loginLimits, scopeNeeds, events } =
    gateway
  const { browserOf, cookieFor, loadFlow, returnToFlow } = createBrowserBinding({
    flows,
    clients,
    secrets: options.secrets,
    flowTtlSeconds: options.flowTtl,
    secure: urls.issuer.startsWith('https:')
  })
  const { upstreamScopes, resolveUpstream, goUpstream, returnFromUpstream } = createUpstreamLeg({
    flows,
    upstream,
    scopeNeeds,
    events,
    returnToFlow,
    identity: {
      userEndpoint: options.upstreamUserEndpoint,
      allowedUsers: options.upstreamAllowedUsers,
      allowedOrgs: options.upstreamAllowedOrgs,
      timeoutMs: options.upstreamTimeout
    }
  })
  const ssoLeg = sso === undefined
    ? undefined
    : createSsoLeg({ sso, flows, callbackUrl: urls.loginSsoCallback, returnToFlow })
  const loginPath = new URL(urls.login).pathname
  // Every route of the chain answers without a sign-in, so each is limited per client address (in Redis
  // when the store is, so across replicas).
  const config = { rateLimit: { max: options.rateLimitSignIn, timeWindow: 60_000 } }
  const consentPath = new URL(urls.consent).pathname

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
    if (err instanceof ClientDocumentError) {
      // A document that cannot be fetched may be every CIMD client failing (egress blocked): the operator must hear.
      const level = err.status === 502 ? warnOncePerMinute('client-document-unreachable') : 'info'
      req.log[level]({ statusCode: err.status, detail: err.message }, 'authorize: client metadata document refused')
      return page(reply, err.status, err.status === 400 ? 'Client not accepted' : 'Client unavailable', err.message)
    }
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
        'This MCP client is not registered with the gateway (registrations expire when unused, and are lost ' +
          'when an in-memory gateway restarts). Remove and re-add the server in your client so it registers again.'
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
        'The address this client asked to return to is not one it registered, ' +
          'so the gateway will not send anything there.'
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
    reply.header('set-cookie', cookieFor(browser))
    return reply.header('cache-control', 'no-store').redirect(`${loginPath}?flow=${flow.id}`, 302)
  })

  app.get('/login', { config, schema: { querystring: FlowQuery } }, async (req, reply) => {
    const loaded = await loadFlow(req, req.query.flow)
    return page(reply, 200, await loginScreen(loaded.flow, loaded.client))
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
        return page(reply, 429, 'Too many failed sign-ins', refusalText(refusal))
      }
      return page(reply, 429, await loginScreen(flow, client, {
        username: body.username,
        error: refusalText(refusal)
      }))
    }
    if (!await accounts.verify(body.username, body.password)) {
      await loginLimits.recordFailure(req.ip, body.username)
      events.emit('login_failed', { clientId: client.clientId }, req.log)
      return page(reply, 401, await loginScreen(flow, client, {
        username: body.username,
        error: 'Wrong username or password.'
      }))
    }
    return await signedIn(req, reply, flow, client, body.username)
  })

  if (ssoLeg !== undefined) {
    const leg = ssoLeg
    app.post('/login/sso', { config, schema: { body: SsoBody } }, async (req, reply) => {
      const { flow } = await loadFlow(req, req.body.flow, req.body.csrf)
      return await leg.goToProvider(reply, flow)
    })
    app.get('/login/sso/callback', { config, schema: { querystring: SsoCallbackQuery } }, async (req, reply) => {
      const { flow, client, email } = await leg.returnFromProvider(req, req.query)
      return await signedIn(req, reply, flow, client, email)
    })
  }

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
      events.emit('consent_denied', { clientId: client.clientId, userId: flow.userId }, req.log)
      throw new ClientRedirectError(flow, 'access_denied', 'the user denied access', 303)
    }
    let scopes: string[] | undefined
    if (body.remember === 'on') {
      scopes = await resolveUpstream(req, flow)
      await consents.remember(flow.userId, client.clientId, scopes)
    }
    events.emit('consent_given', {
      clientId: client.clientId,
      userId: flow.userId,
      remembered: body.remember === 'on'
    }, req.log)
    return await goUpstream(req, reply, flow, scopes)
  })

  app.get('/upstream/callback', { config, schema: { querystring: CallbackQuery } }, async (req, reply) => {
    const { flow, tokens, identity } = await returnFromUpstream(req, req.query)
    // The upstream leg starts only from the consent step, which requires the sign-in: the flow has its user.
    const userId = flow.userId as string
    const code = await grants.createCode({
      clientId: flow.clientId,
      redirectUri: flow.redirectUri,
      codeChallenge: flow.codeChallenge,
      resource: flow.resource,
      scope: flow.scope,
      userId,
      ...(identity === undefined ? {} : { upstreamUser: { login: identity.login, id: identity.id } }),
      upstream: tokens
    })
    events.emit('code_issued', {
      clientId: flow.clientId,
      userId,
      ...(identity === undefined ? {} : { upstreamUser: identity.login })
    }, req.log)
    return redirectToClient(reply, flow, { code }, 302)
  })

  /** The login page of a flow: the password form unless single sign-on replaced it, and the sign-on button. */
  async function loginScreen (
    flow: FlowRecord,
    client: ClientRecord,
    attempt: { username?: string, error?: string } = {}
  ): Promise<string> {
    return loginPage({
      action: loginPath,
      flowId: flow.id,
      csrf: flow.csrf,
      flow: await view(flow, client),
      passwords: sso === undefined || options.usersFile !== undefined,
      ...(sso === undefined ? {} : { sso: { action: new URL(urls.loginSso).pathname, provider: sso.displayName } }),
      ...attempt
    })
  }

  /** Screen 1 passed as `userId`, by password or single sign-on: consent next, unless remembered. */
  async function signedIn (
    req: FastifyRequest,
    reply: FastifyReply,
    flow: FlowRecord,
    client: ClientRecord,
    userId: string
  ): Promise<FastifyReply> {
    flow.userId = userId
    await flows.save(flow)
    events.emit('login_succeeded', { clientId: client.clientId, userId }, req.log)
    const scopes = await resolveUpstream(req, flow)
    if (await consents.covers(userId, client.clientId, scopes)) {
      return await goUpstream(req, reply, flow, scopes)
    }
    return reply.redirect(`${consentPath}?flow=${flow.id}`, 303)
  }

  /** What the pages show; `scopes` when the upstream's are already resolved in this request. */
  async function view (flow: FlowRecord, client: ClientRecord, scopes?: string[]): Promise<FlowView> {
    return {
      clientName: client.metadata.client_name ?? '',
      clientId: client.clientId,
      clientHost: isClientIdUrl(client.clientId) ? new URL(client.clientId).host : undefined,
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

function page (reply: FastifyReply, status: number, titleOrHtml: string, message?: string): FastifyReply {
  const body = message === undefined ? titleOrHtml : errorPage({ title: titleOrHtml, message })
  return reply.code(status).headers(PAGE_HEADERS).send(body)
}

export default authorize
