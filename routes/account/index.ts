import { fastifyCookie } from '@fastify/cookie'
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AccountSessions, type AccountSession } from '../../lib/account-sessions.js'
import { isClientIdUrl } from '../../lib/client-metadata-document.js'
import { randomToken, safeEqual } from '../../lib/crypto.js'
import { PAGE_HEADERS } from '../../lib/html.js'
import { configuredSso } from '../../lib/login-sso.js'
import type { GatewayContext } from '../../plugins/context.js'
import { refusalText } from '../authorize/pages.js'
import { SsoCallbackQuery } from '../authorize/schema.js'
import { classifyRequestError } from '../request-errors.js'
import { ACCOUNT_ERROR_PAGES, accountErrorPage, accountPage, accountSignInPage } from './pages.js'
import { AccountLoginBody, AccountQuery, AccountSsoBody, RevokeBody, SignOutBody } from './schema.js'
import { AccountPageError, createAccountSsoLeg } from './sso-leg.js'

/** How long a sign-in to the account page lasts, never extended: long enough to look and revoke. */
export const ACCOUNT_SESSION_TTL_MS = 15 * 60_000

/**
 * The signed-in person's page (issue 19): the MCP clients they connected, each with a revoke button, and sign-out.
 *
 *   GET  /account          the sign-in form, or the person's clients once signed in
 *   POST /account/login    screen 1's password check, with screen 1's limits (lib/login-limits.ts)
 *   POST /account/sso      screen 1's single sign-on, when configured, back at GET /account/sso/callback
 *   POST /account/revoke   ends one of the person's own grants, on every replica (GrantService.revokeGrant)
 *   POST /account/logout   ends the session
 *
 * A sign-in here is a session of its own: a random token in an HttpOnly, SameSite=Lax cookie (Secure and __Host-
 * over https), stored hashed, for ACCOUNT_SESSION_TTL_MS. Lax, not Strict, because a sign-on provider sends the
 * browser back cross-site; nothing changes on a GET, and every form carries a CSRF token: the session's, or, for the
 * sign-in form, one bound to a signed cookie (double submit), compared in constant time.
 */
const account: FastifyPluginAsyncTypebox = async (app) => {
  const gateway = app.getDecorator<GatewayContext>('mcpGateway')
  const { options, urls, store, clock, grants, accounts, loginLimits } = gateway
  const sessions = new AccountSessions({
    store,
    clock,
    ttlMs: ACCOUNT_SESSION_TTL_MS,
    maxSessions: options.maxPendingSignIns
  })
  const secure = urls.issuer.startsWith('https:')
  const sessionCookie = secure ? '__Host-mcp-gateway-account' : 'mcp-gateway-account'
  const loginCookie = secure ? '__Host-mcp-gateway-account-login' : 'mcp-gateway-account-login'
  const attributes = `Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`
  // @fastify/cookie's signer only, as for the flow cookie (routes/authorize/browser-binding.ts).
  const signer = fastifyCookie.signerFactory(options.secrets)
  const accountPath = new URL(urls.account).pathname
  const paths = {
    login: `${accountPath}/login`,
    revoke: `${accountPath}/revoke`,
    logout: `${accountPath}/logout`,
    sso: `${accountPath}/sso`
  }
  // Nothing here needs a token, so every route is limited per client address, as the sign-in chain's are.
  const config = { rateLimit: { max: options.rateLimitSignIn, timeWindow: 60_000 } }
  // Screen 1's provider and allow-lists, with a callback of the account page's own.
  const sso = configuredSso(options, urls.accountSsoCallback)
  const passwords = sso === undefined || options.usersFile !== undefined
  const ssoLeg = sso === undefined
    ? undefined
    : createAccountSsoLeg({
      sso,
      store,
      callbackUrl: urls.accountSsoCallback,
      ttlMs: options.flowTtl * 1000,
      maxPending: options.maxPendingSignIns
    })

  app.removeAllContentTypeParsers()
  await app.register(formbody, { bodyLimit: 16 * 1024 })

  app.setErrorHandler(async (err: Error, req, reply) => {
    if (err instanceof AccountPageError) return page(reply, err.status, errorPage(err.title, err.message))
    const problem = classifyRequestError(err)
    if (problem.kind === 'bug') {
      req.log.error({ err }, 'account page failed')
    } else {
      req.log[problem.logLevel]({ problem: problem.kind, statusCode: problem.status, detail: err.message },
        'account page request rejected')
    }
    if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds))
    const { title, message } = ACCOUNT_ERROR_PAGES[problem.kind]
    return page(reply, problem.status, errorPage(title, message))
  })

  app.get('/account', { config, schema: { querystring: AccountQuery } }, async (req, reply) => {
    const notice = req.query.done === 'revoked'
      ? 'Access revoked.'
      : req.query.done === 'signed-out' ? 'You are signed out.' : undefined
    const signedIn = await sessionOf(req)
    if (signedIn === undefined) return signInForm(req, reply, 200, { ...(notice === undefined ? {} : { notice }) })
    const { session } = signedIn
    const held = await grants.grantsOf(session.userId)
    return page(reply, 200, accountPage({
      username: session.userId,
      grants: held.map((grant) => ({
        ...grant,
        clientHost: isClientIdUrl(grant.clientId) ? new URL(grant.clientId).host : undefined
      })),
      csrf: session.csrf,
      revokeAction: paths.revoke,
      signOutAction: paths.logout,
      ...(notice === undefined ? {} : { notice })
    }))
  })

  app.post('/account/login', { config, schema: { body: AccountLoginBody } }, async (req, reply) => {
    const { csrf, username, password } = req.body
    checkSignInForm(req, csrf)
    // Screen 1's limits: failures, never successes, count, per address and per existing user name.
    const refusal = await loginLimits.check(req.ip, username)
    if (refusal !== undefined) {
      const retryAfterSeconds = Math.ceil(refusal.retryAfterMs / 1000)
      req.log.warn({ reason: refusal.reason, retryAfterSeconds }, 'account sign-in refused')
      reply.header('retry-after', String(retryAfterSeconds))
      return signInForm(req, reply, 429, { username, error: refusalText(refusal) })
    }
    if (!await accounts.verify(username, password)) {
      await loginLimits.recordFailure(req.ip, username)
      req.log.info('account sign-in failed')
      return signInForm(req, reply, 401, { username, error: 'Wrong username or password.' })
    }
    return await startSession(req, reply, username)
  })

  if (ssoLeg !== undefined) {
    const leg = ssoLeg
    app.post('/account/sso', { config, schema: { body: AccountSsoBody } }, async (req, reply) => {
      return await leg.goToProvider(reply, checkSignInForm(req, req.body.csrf))
    })
    app.get('/account/sso/callback', { config, schema: { querystring: SsoCallbackQuery } }, async (req, reply) => {
      const email = await leg.returnFromProvider(req, req.query, unsigned(cookieValue(req, loginCookie)))
      return await startSession(req, reply, email)
    })
  }

  /** The sign-in form's CSRF token, checked against the cookie the form came with; it is the browser's id too. */
  function checkSignInForm (req: FastifyRequest, csrf: string): string {
    const expected = unsigned(cookieValue(req, loginCookie))
    if (expected === undefined || !safeEqual(csrf, expected)) {
      req.log.warn('account sign-in: CSRF token mismatch')
      throw new AccountPageError(403, 'Request refused',
        'The form was not submitted from this gateway\'s sign-in page, or it expired. Sign in again.')
    }
    return expected
  }

  /** The person passed screen 1's check: a session, its cookie, and the page. */
  async function startSession (req: FastifyRequest, reply: FastifyReply, userId: string): Promise<FastifyReply> {
    const { token } = await sessions.create(userId)
    req.log.info({ userId }, 'account sign-in succeeded')
    return reply
      .header('set-cookie', [
        `${sessionCookie}=${token}; Max-Age=${ACCOUNT_SESSION_TTL_MS / 1000}; ${attributes}`,
        `${loginCookie}=; Max-Age=0; ${attributes}`
      ])
      .header('cache-control', 'no-store')
      .redirect(accountPath, 303)
  }

  app.post('/account/revoke', { config, schema: { body: RevokeBody } }, async (req, reply) => {
    const { session } = await formSession(req, req.body.csrf)
    const grant = await grants.findGrant(req.body.grant)
    // Another person's grant is as unknown as one that does not exist: nothing tells them apart.
    if (grant?.userId !== session.userId) {
      req.log.info({ userId: session.userId }, 'account: revoke of a grant the person does not hold')
      throw new AccountPageError(404, 'No such client',
        'This client is not connected to your account (any more): it may have been revoked already.')
    }
    await grants.revokeGrant(grant.id, 'user_revoked', req.log)
    return reply.header('cache-control', 'no-store').redirect(`${accountPath}?done=revoked`, 303)
  })

  app.post('/account/logout', { config, schema: { body: SignOutBody } }, async (req, reply) => {
    const { token, session } = await formSession(req, req.body.csrf)
    await sessions.end(token)
    req.log.info({ userId: session.userId }, 'account sign-out')
    return reply
      .header('set-cookie', `${sessionCookie}=; Max-Age=0; ${attributes}`)
      .header('cache-control', 'no-store')
      .redirect(`${accountPath}?done=signed-out`, 303)
  })

  async function sessionOf (req: FastifyRequest): Promise<{ token: string, session: AccountSession } | undefined> {
    const token = cookieValue(req, sessionCookie)
    const session = await sessions.load(token)
    return session === undefined ? undefined : { token: token as string, session }
  }

  /** The session a form was posted from, with its CSRF token checked; an error page otherwise. */
  async function formSession (req: FastifyRequest, csrf: string): Promise<{ token: string, session: AccountSession }> {
    const signedIn = await sessionOf(req)
    if (signedIn === undefined) {
      throw new AccountPageError(401, 'Signed out', 'Your sign-in to this page has ended. Sign in again.')
    }
    if (!sessions.checkCsrf(signedIn.session, csrf)) {
      req.log.warn({ userId: signedIn.session.userId }, 'account: CSRF token mismatch')
      throw new AccountPageError(403, 'Request refused', 'The form was not submitted from your account page.')
    }
    return signedIn
  }

  /**
   * The sign-in form, with its CSRF token in a signed cookie for the post to match: the browser's own if it has
   * one (so two tabs both work), else a fresh one.
   */
  function signInForm (
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    p: { username?: string, error?: string, notice?: string }
  ): FastifyReply {
    const csrf = unsigned(cookieValue(req, loginCookie)) ?? randomToken()
    reply.header('set-cookie', `${loginCookie}=${signer.sign(csrf)}; Max-Age=${options.flowTtl}; ${attributes}`)
    const button = sso === undefined ? {} : { sso: { action: paths.sso, provider: sso.displayName } }
    return page(reply, status, accountSignInPage({ action: paths.login, csrf, passwords, ...button, ...p }))
  }

  function unsigned (raw: string | undefined): string | undefined {
    if (raw === undefined) return undefined
    const result = signer.unsign(raw)
    return result.valid && result.value !== null ? result.value : undefined
  }

  function errorPage (title: string, message: string): string {
    return accountErrorPage({ title, message, back: accountPath })
  }
}

function page (reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(body)
}

/** One cookie's value from the Cookie header (RFC 6265 §5.4), as browser-binding.ts reads the flow cookie. */
function cookieValue (req: FastifyRequest, name: string): string | undefined {
  for (const pair of (req.headers.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}

export default account
