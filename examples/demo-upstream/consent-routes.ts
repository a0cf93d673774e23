import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { PageError, RedirectError, type Authority, type Authorization } from './authority.js'
import { consentPage, errorPage, PAGE_HEADERS } from './consent-page.js'
import { randomToken } from './memory.js'

/*
 * /authorize, where the person decides (screen 2): GET checks the request and shows the page, POST takes
 * the answer. The page is bound to the browser that saw it (a cookie) and to the form (a CSRF token).
 */

// Both servers of the demo share 127.0.0.1, and cookies ignore ports: a name of its own.
const BROWSER_COOKIE = 'demo_upstream_browser'
const Param = Type.Optional(Type.String({ maxLength: 2048 }))
const AuthorizeQuery = Type.Object({
  response_type: Param,
  client_id: Param,
  redirect_uri: Param,
  scope: Param,
  state: Param,
  code_challenge: Param,
  code_challenge_method: Param,
  resource: Param
})
const AnswerBody = Type.Object({
  request: Type.String({ minLength: 1, maxLength: 100 }),
  csrf: Type.String({ minLength: 1, maxLength: 100 }),
  decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')])
})

/** The client's redirect URI with the result (RFC 6749 §4.1.2), and the issuer (RFC 9207). */
function back (reply: FastifyReply, a: Authorization, issuer: string, result: Record<string, string>, status = 303) {
  const url = new URL(a.redirectUri)
  for (const [name, value] of Object.entries(result)) url.searchParams.set(name, value)
  if (a.state !== undefined) url.searchParams.set('state', a.state)
  url.searchParams.set('iss', issuer)
  return reply.code(status).header('cache-control', 'no-store').redirect(url.href)
}

export const consentRoutes: FastifyPluginAsyncTypebox<{ authority: Authority, origin: string }> = async (
  app,
  { authority, origin }
) => {
  await app.register(cookie)
  await app.register(formbody, { bodyLimit: 4096 })
  const page = (reply: FastifyReply, status: number, title: string, message: string) =>
    reply.code(status).headers(PAGE_HEADERS).send(errorPage(title, message))
  app.setErrorHandler((err, req, reply) => {
    req.log.info({ err }, 'authorization request refused')
    return page(reply, 400, 'Bad request', 'This request is malformed.')
  })

  app.get('/authorize', { schema: { querystring: AuthorizeQuery } }, async (req, reply) => {
    let checked
    try {
      checked = authority.check(req.query)
    } catch (err) {
      if (err instanceof RedirectError) {
        const { error, message } = err.failure
        return back(reply, err.authorization, origin, { error, error_description: message }, 302)
      }
      const { title, message } = err as PageError
      return page(reply, 400, title, message)
    }
    const { client, authorization } = checked
    const browser = req.cookies[BROWSER_COOKIE] ?? randomToken()
    const { id, csrf } = authority.hold(authorization, browser)
    reply.setCookie(BROWSER_COOKIE, browser, { path: '/authorize', httpOnly: true, sameSite: 'lax', maxAge: 600 })
    return reply.headers(PAGE_HEADERS).send(consentPage({
      clientName: client.clientName,
      redirectUri: authorization.redirectUri,
      scopes: authorization.scopes,
      request: id,
      csrf
    }))
  })

  app.post('/authorize', { schema: { body: AnswerBody } }, async (req, reply) => {
    const { request, csrf, decision } = req.body
    const authorization = authority.answer(request, csrf, req.cookies[BROWSER_COOKIE] ?? '')
    if (authorization === undefined) {
      return page(reply, 403, 'Request refused',
        'This page expired, was already answered, or was opened in another browser.')
    }
    req.log.info({ decision }, 'authorization answered')
    if (decision === 'deny') return back(reply, authorization, origin, { error: 'access_denied' })
    return back(reply, authorization, origin, { code: authority.issueCode(authorization) })
  })
}
