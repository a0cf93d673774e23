// A gateway access token the way a real MCP client gets one, over HTTP: RFC 7591 registration,
// /authorize with PKCE, the login and consent screens (with the browser cookie), the upstream AS
// round trip, the callback, and the /token exchange. Same steps as test/helpers/gateway.ts.
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'undici'

const REDIRECT_URI = 'http://127.0.0.1:33418/callback'

export async function obtainToken (origin, { username, password }) {
  const cookies = new Map()
  const send = async (url, { method = 'GET', form, json } = {}) => {
    const headers = {}
    if (cookies.size > 0) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    let body
    if (form !== undefined) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(form).toString() }
    if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json) }
    const res = await request(new URL(url, origin), { method, headers, body })
    const text = await res.body.text()
    for (const line of [res.headers['set-cookie'] ?? []].flat()) {
      const [pair] = line.split(';', 1)
      const eq = pair.indexOf('=')
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
    }
    return { status: res.statusCode, location: res.headers.location, text }
  }
  const expect = (res, status, step) => {
    if (res.status !== status) throw new Error(`${step}: expected ${status}, got ${res.status} ${res.text.slice(0, 300)}`)
    return res
  }
  const hidden = (html, name) => {
    const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)
    if (m === null) throw new Error(`login page has no ${name} field`)
    return m[1]
  }

  const reg = expect(await send('/register', {
    method: 'POST',
    json: { client_name: 'bench', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] }
  }), 201, 'register')
  const client = JSON.parse(reg.text)
  const verifier = randomBytes(32).toString('base64url')
  const challenge = createHash('sha256').update(verifier).digest('base64url')
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'bench-state',
    resource: `${origin}/mcp`
  })
  const authorize = expect(await send(`/authorize?${query}`), 302, 'authorize')
  const login = expect(await send(authorize.location), 200, 'login page')
  const flow = { flow: hidden(login.text, 'flow'), csrf: hidden(login.text, 'csrf') }
  const signedIn = expect(await send('/login', { method: 'POST', form: { ...flow, username, password } }), 303, 'login')
  let upstreamUrl = signedIn.location
  if (upstreamUrl.startsWith('/consent')) {
    upstreamUrl = expect(await send('/consent', { method: 'POST', form: { ...flow, decision: 'approve' } }), 303, 'consent').location
  }
  const back = expect(await send(upstreamUrl), 302, 'upstream authorize')
  const done = expect(await send(back.location), 302, 'callback')
  const code = new URL(done.location).searchParams.get('code')
  if (code === null) throw new Error(`callback redirected without a code: ${done.location}`)
  const token = expect(await send('/token', {
    method: 'POST',
    form: { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: client.client_id, redirect_uri: REDIRECT_URI }
  }), 200, 'token')
  return JSON.parse(token.text)
}

/**
 * What an MCP client sends first: initialize, with no session id. The upstream answers with one, which
 * the gateway binds to the grant (the session ownership check of every later request is then what it is
 * in production: a cache hit, not a lookup of an id nobody was given). Returns the session id.
 */
export async function initializeSession (origin, token, headers) {
  const { 'mcp-session-id': _, ...initHeaders } = headers
  const body = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: initHeaders['mcp-protocol-version'], capabilities: {}, clientInfo: { name: 'bench', version: '1' } } })
  const res = await request(new URL('/mcp', origin), { method: 'POST', headers: { ...initHeaders, authorization: `Bearer ${token}` }, body })
  await res.body.dump()
  const session = res.headers['mcp-session-id']
  if (res.statusCode !== 200 || session !== headers['mcp-session-id']) throw new Error(`initialize: expected 200 and session ${headers['mcp-session-id']}, got ${res.statusCode} and ${session}`)
  return session
}
