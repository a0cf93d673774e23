import t from 'tap'
import type { InjectOptions } from 'fastify'
import { createPkcePair } from '../../lib/pkce.js'
import { Browser, authorizeUrl, registerClient, startFlow } from '../helpers/gateway.js'
import { ERROR_LEVEL, loggedGateway, type LogLine } from '../helpers/logged-gateway.js'

/*
 * Issue 15 finding 2: a client's mistake is a 4xx in the language of the route it was sent to (RFC 6749
 * JSON on /token, /revoke and /register; the HTML error page on the sign-in chain; the proxy's JSON on
 * /mcp), logged at info without a stack. A 500, or a line at error level, would mean a gateway bug, and
 * nobody has to sign in to send these: a flood of them must not flood the logs.
 */

type Language = 'html' | 'json'

const ROUTES: ReadonlyArray<{ method: 'GET' | 'POST', url: string, language: Language }> = [
  { method: 'GET', url: '/authorize', language: 'html' },
  { method: 'GET', url: '/login', language: 'html' },
  { method: 'POST', url: '/login', language: 'html' },
  { method: 'GET', url: '/consent', language: 'html' },
  { method: 'POST', url: '/consent', language: 'html' },
  { method: 'GET', url: '/upstream/callback', language: 'html' },
  { method: 'GET', url: '/account', language: 'html' },
  { method: 'POST', url: '/account/login', language: 'html' },
  { method: 'POST', url: '/account/revoke', language: 'html' },
  { method: 'POST', url: '/account/logout', language: 'html' },
  { method: 'POST', url: '/token', language: 'json' },
  { method: 'POST', url: '/revoke', language: 'json' },
  { method: 'POST', url: '/register', language: 'json' },
  { method: 'POST', url: '/mcp', language: 'json' },
  { method: 'GET', url: '/mcp', language: 'json' },
  { method: 'GET', url: '/.well-known/oauth-authorization-server', language: 'json' },
  { method: 'GET', url: '/.well-known/oauth-protected-resource/mcp', language: 'json' }
]

const FORM = 'application/x-www-form-urlencoded'

/** Bodies a client may get wrong, each with its content type (undefined: none sent). */
const BODIES: ReadonlyArray<{ name: string, contentType: string | undefined, payload: string }> = [
  { name: 'JSON', contentType: 'application/json', payload: JSON.stringify({ flow: 'f', csrf: 'c', username: 'u', password: 'p' }) },
  { name: 'malformed JSON', contentType: 'application/json', payload: '{"flow":' },
  { name: 'XML', contentType: 'application/xml', payload: '<login><username>u</username></login>' },
  { name: 'an unknown content type', contentType: 'application/x-nonsense', payload: 'whatever' },
  { name: 'no content type', contentType: undefined, payload: 'flow=f&csrf=c' },
  { name: 'a 20 KB form', contentType: FORM, payload: `flow=f&csrf=c&username=${'u'.repeat(20 * 1024)}` },
  { name: 'a 2 MB form', contentType: FORM, payload: `flow=f&csrf=c&password=${'p'.repeat(2 * 1024 * 1024)}` },
  { name: 'malformed urlencoded', contentType: FORM, payload: '%zz=%%&=&&flow=%E0%A4%A' },
  { name: 'duplicated params', contentType: FORM, payload: 'flow=a&flow=b&csrf=c&csrf=d&username=u&password=p&grant_type=x&grant_type=y' }
]

const HUGE_QUERY = `flow=${'f'.repeat(8 * 1024)}&client_id=${'c'.repeat(8 * 1024)}&state=${'s'.repeat(8 * 1024)}`

function problems (logs: LogLine[], from: number): LogLine[] {
  return logs.slice(from).filter((line) => line.level >= ERROR_LEVEL || line.err?.stack !== undefined)
}

t.test('issue 15 finding 2: bad input on every route is a 4xx in its own language, never a 5xx or an error-level log line', async (t) => {
  const { app, logs } = await loggedGateway(t)
  let address = 0
  for (const route of ROUTES) {
    // An address per route: the sweep is about bad input, not about the rate limits.
    const remoteAddress = `192.0.2.${++address}`
    const send = async (what: string, options: InjectOptions): Promise<void> => {
      const from = logs.length
      const res = await app.inject({ remoteAddress, ...options })
      const label = `${String(options.method)} ${route.url} with ${what}`
      // Documents that ignore the query may answer 200; what matters is that nothing is a 5xx.
      t.ok(res.statusCode < 500, `${label}: not a 5xx (got ${res.statusCode})`)
      t.same(problems(logs, from).map((line) => line.msg), [], `${label}: nothing logged at error level, no stack`)
      return undefined
    }
    const checkLanguage = async (what: string, options: InjectOptions): Promise<void> => {
      const res = await app.inject({ remoteAddress, ...options })
      if (res.statusCode < 400) return
      const type = String(res.headers['content-type'])
      t.match(type, route.language === 'html' ? /^text\/html/ : /^application\/json/, `${route.method} ${route.url} with ${what}: answered in ${route.language}`)
    }
    if (route.method === 'POST') {
      for (const body of BODIES) {
        const options: InjectOptions = {
          method: 'POST',
          url: route.url,
          payload: body.payload,
          headers: body.contentType === undefined ? {} : { 'content-type': body.contentType }
        }
        await send(body.name, options)
        await checkLanguage(body.name, options)
      }
    }
    await send('a huge query', { method: route.method, url: `${route.url}?${HUGE_QUERY}` })
    await checkLanguage('a huge query', { method: route.method, url: `${route.url}?${HUGE_QUERY}` })
    await send('a duplicated query', { method: route.method, url: `${route.url}?flow=a&flow=b&client_id=a&client_id=b&state=a&state=b` })
    for (const method of ['PUT', 'DELETE', 'PATCH', route.method === 'GET' ? 'POST' : 'GET'] as const) {
      // A wrong method on /mcp is the proxy's to answer (GET and DELETE are MCP methods there).
      if (route.url === '/mcp') continue
      await send('the wrong method', { method, url: route.url, payload: '{"a":1}', headers: { 'content-type': 'application/json' } })
    }
  }
})

t.test('issue 15 finding 2: POST /login and /consent with a JSON body → 415 error page, logged at info without a stack', async (t) => {
  const { app, logs } = await loggedGateway(t)
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  for (const url of ['/login', '/consent']) {
    const from = logs.length
    const cookie = [...browser.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    const res = await app.inject({ method: 'POST', url, headers: { cookie }, payload: { ...flow, username: 'gateway_user', password: 'gateway_pass', decision: 'approve' } })
    t.equal(res.statusCode, 415, url)
    t.match(res.headers['content-type'], /^text\/html/, url)
    t.match(res.body, /form/i, `${url}: the page says what was wrong`)
    t.same(problems(logs, from), [], `${url}: no error-level line, no stack`)
    t.ok(logs.slice(from).some((line) => line.level === 30 && line.statusCode === 415), `${url}: one info line says what was refused`)
  }
})

t.test('issue 15 finding 2: a 20 KB login form → 413 error page, logged at info without a stack', async (t) => {
  const { app, logs } = await loggedGateway(t)
  const from = logs.length
  const res = await app.inject({ method: 'POST', url: '/login', headers: { 'content-type': FORM }, payload: `flow=f&csrf=c&username=u&password=${'p'.repeat(20 * 1024)}` })
  t.equal(res.statusCode, 413)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.body, /too large/i)
  t.same(problems(logs, from), [])
  t.notMatch(JSON.stringify(logs), /pppppppppp/, 'the body is never logged')
})

t.test('issue 15 finding 2: a bounded kind of state that is full (StoreFullError) → 503 with Retry-After, a warning, in each route\'s language', async (t) => {
  // One unused registration and one sign-in in progress at most: the second of each finds its kind full.
  const { app, logs } = await loggedGateway(t, { maxUnusedClients: 1, maxPendingSignIns: 1 })
  const client = await registerClient(app)
  t.equal((await app.inject(authorizeUrl(client, { challenge: createPkcePair().challenge }))).statusCode, 302)
  const from = logs.length
  const registration = await app.inject({ method: 'POST', url: '/register', payload: { redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' } })
  t.equal(registration.statusCode, 503)
  t.equal(registration.headers['retry-after'], '5')
  t.same(registration.json(), { error: 'temporarily_unavailable', error_description: 'the gateway is busy, try again later' })
  const authorize = await app.inject(authorizeUrl(client, { challenge: createPkcePair().challenge }))
  t.equal(authorize.statusCode, 503)
  t.equal(authorize.headers['retry-after'], '5')
  t.match(authorize.headers['content-type'], /^text\/html/)
  t.match(authorize.body, /busy/)
  t.same(problems(logs, from), [], 'not an error: a bound doing its job')
  t.equal(logs.slice(from).filter((line) => line.level === 40).length, 2, 'one warning each')
})
