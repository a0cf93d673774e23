import t from 'tap'
import { PUBLIC_URL, authorizeFully, buildGateway, exchangeCode, registerClient, tokenRequest } from '../helpers/gateway.js'

t.test('the whole chain: register, sign in, consent, upstream, code, tokens, refresh', async (t) => {
  const { app, github } = await buildGateway(t)
  const client = await registerClient(app)
  const done = await authorizeFully(app, client)
  t.equal(done.redirect.origin + done.redirect.pathname, 'http://127.0.0.1:33418/callback')
  t.equal(done.redirect.searchParams.get('state'), 'client-state-123', 'state echoed (OAuth 2.1 §4.1.2)')
  t.equal(done.redirect.searchParams.get('iss'), PUBLIC_URL, 'RFC 9207 iss is the issuer')
  t.match(done.code, /^gwo_/)

  const res = await exchangeCode(app, client, done.code, done.verifier)
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['cache-control'], 'no-store')
  const tokens = res.json()
  t.match(tokens, { token_type: 'Bearer', scope: 'mcp', expires_in: 3600 })
  t.match(tokens.access_token, /^gwa_/)
  t.match(tokens.refresh_token, /^gwr_/)
  t.notMatch(res.body, /gho_/, 'the upstream token never reaches the client')

  const refreshed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  t.equal(refreshed.statusCode, 200, refreshed.body)
  t.not(refreshed.json().refresh_token, tokens.refresh_token, 'rotated')
  t.ok(github.requests.some((r) => r.path.startsWith('/login/oauth/access_token')), 'the upstream code was exchanged')
})
