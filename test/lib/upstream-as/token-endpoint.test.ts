import t from 'tap'
import { request } from 'undici'
import { createPkcePair } from '../../../lib/pkce.js'
import { UpstreamError } from '../../../lib/upstream-as/errors.js'
import { parseTokenResponse } from '../../../lib/upstream-as/token-endpoint.js'
import { authorize, forGithub, forTiny, github, NOW, REDIRECT_URI, rejection, sendJson, tiny } from '../../helpers/upstream-as.js'

/** The upstream token endpoint (lib/upstream-as/token-endpoint.ts): code exchange, refresh, lenient replies. */

t.test('code exchange and refresh against the GitHub fake', async (t) => {
  t.test('OAuth App: gho_ token that never expires, no refresh token, comma scopes ' +
    '(github docs; rust-sdk#594)', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    const { code, verifier } = await authorize(upstream, ['repo', 'gist'])
    const tokens = await upstream.exchangeCode({ code, codeVerifier: verifier })
    t.match(tokens.accessToken, /^gho_/)
    t.equal(tokens.expiresAt, undefined)
    t.equal(tokens.refreshToken, undefined)
    t.same(tokens.scopes, ['repo', 'gist'])
    t.equal(tokens.tokenType, 'bearer')
    t.ok(fake.isValidAccessToken(tokens.accessToken))

    const sent = fake.requests.find((r) => r.path === '/login/oauth/access_token')
    t.equal(sent?.headers.accept, 'application/json', 'JSON asked for: GitHub answers form-encoded otherwise')
    t.equal(sent?.headers['content-type'], 'application/x-www-form-urlencoded')
    t.same(Object.fromEntries(new URLSearchParams(sent?.body)), {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      client_id: fake.clientId,
      client_secret: fake.clientSecret
    })

    const mcp = await request(fake.resourceUrl, { headers: { authorization: `Bearer ${tokens.accessToken}` } })
    t.same(await mcp.body.json(), { ok: true }, 'the token works at the RS')
  })

  t.test('a code is single use: the replay is an error with HTTP 200 (landscape bug 12)', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    const { code, verifier } = await authorize(upstream)
    await upstream.exchangeCode({ code, codeVerifier: verifier })
    const err = await rejection(upstream.exchangeCode({ code, codeVerifier: verifier }))
    t.equal(err.kind, 'oauth_error')
    t.equal(err.oauthError, 'bad_verification_code')
    t.equal(err.status, 200)
    t.match(err.message, 'The code passed is incorrect or expired.')
    t.notMatch(err.message, code)
    t.notMatch(err.message, verifier)
    t.notMatch(err.message, fake.clientSecret)
  })

  t.test('PKCE is verified upstream, and a redirect_uri mismatch is reported', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    const first = await authorize(upstream)
    const wrong = await rejection(upstream.exchangeCode({ code: first.code, codeVerifier: createPkcePair().verifier }))
    t.equal(wrong.oauthError, 'bad_verification_code')
    const other = forGithub(t, fake, { redirectUri: 'https://other.example/cb' })
    const mismatch = await rejection(other.upstream.exchangeCode({ code: first.code, codeVerifier: first.verifier }))
    t.equal(mismatch.oauthError, 'redirect_uri_mismatch')
    t.ok(await upstream.exchangeCode({ code: first.code, codeVerifier: first.verifier }),
      'failed attempts do not burn the code')
  })

  t.test('wrong client credentials', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake, { clientSecret: 'wrong-secret-value' })
    const err = await rejection(upstream.exchangeCode({ code: 'x', codeVerifier: 'y' }))
    t.equal(err.oauthError, 'incorrect_client_credentials')
    t.notMatch(err.message, 'wrong-secret-value')
  })

  t.test('expiring tokens: expires_in as a string, refresh rotation ' +
    '(landscape bug 13; GitHub "Refreshing user access tokens")', async (t) => {
    const fake = await github(t, { mode: 'expiring', expiresIn: 600 })
    const { upstream, clock } = forGithub(t, fake)
    const { code, verifier } = await authorize(upstream, ['repo'])
    const tokens = await upstream.exchangeCode({ code, codeVerifier: verifier })
    t.match(tokens.accessToken, /^ghu_/)
    t.match(tokens.refreshToken, /^ghr_/)
    t.equal(tokens.expiresAt, NOW + 600_000)

    clock.advance(1000)
    const refreshed = await upstream.refresh(tokens.refreshToken ?? '')
    t.match(refreshed.accessToken, /^ghu_/)
    t.not(refreshed.accessToken, tokens.accessToken)
    t.not(refreshed.refreshToken, tokens.refreshToken, 'rotated')
    t.equal(refreshed.expiresAt, NOW + 1000 + 600_000)
    t.same(refreshed.scopes, ['repo'])
    t.notOk(fake.isValidAccessToken(tokens.accessToken), 'the old access token stopped working')
    t.ok(fake.isValidAccessToken(refreshed.accessToken))
    const refreshBody = Object.fromEntries(new URLSearchParams(fake.requests.at(-1)?.body))
    t.same(refreshBody, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken,
      client_id: fake.clientId,
      client_secret: fake.clientSecret
    })

    const replay = await rejection(upstream.refresh(tokens.refreshToken ?? ''))
    t.equal(replay.oauthError, 'bad_refresh_token', 'the old refresh token stopped working')
    t.notMatch(replay.message, tokens.refreshToken ?? '')

    fake.revokeAll()
    t.equal((await rejection(upstream.refresh(refreshed.refreshToken ?? ''))).oauthError, 'bad_refresh_token')
  })

  t.test('a refresh without a new refresh token keeps the old one (RFC 6749 §6)', async (t) => {
    const as = await tiny(t, (_req, res) => {
      sendJson(res, 200, { access_token: 'new', expires_in: 3600, token_type: 'bearer', scope: 'a b' })
    })
    const { upstream } = forTiny(t, as, { clientSecret: 's' })
    const tokens = await upstream.refresh('old-refresh')
    t.same(tokens, {
      accessToken: 'new',
      refreshToken: 'old-refresh',
      expiresAt: NOW + 3600_000,
      scopes: ['a', 'b'],
      tokenType: 'bearer'
    })
  })

  t.test('a form-encoded reply even to Accept: application/json, with a lying content-type', async (t) => {
    const as = await tiny(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        'access_token=gho_abc&scope=repo%2Cgist&token_type=bearer')
    })
    const { upstream } = forTiny(t, as, { clientSecret: 's' })
    t.same(await upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }),
      { accessToken: 'gho_abc', scopes: ['repo', 'gist'], tokenType: 'bearer' })
  })

  t.test('a duplicated content-type is joined, as GitHub sends it', async (t) => {
    const as = await tiny(t, (_req, res) => {
      res.writeHead(502, { 'content-type': ['text/html', 'text/html'] }).end('<html>Bad Gateway</html>')
    })
    const { upstream } = forTiny(t, as)
    const err = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(err.kind, 'bad_response')
    t.match(err.message, '(text/html, text/html)')
  })

  t.test('injected failures at the token endpoint', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake, { timeoutMs: 300 })
    fake.tokenFailure = 'error200'
    const error200 = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(error200.kind, 'oauth_error')
    t.equal(error200.status, 200)

    fake.tokenFailure = 'http500'
    const http500 = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(http500.kind, 'bad_response', 'an HTML 500 is not an OAuth error')
    t.equal(http500.status, 500)
    t.match(http500.message, 'text/html')

    fake.tokenFailure = 'hang'
    const started = Date.now()
    const hang = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(hang.kind, 'timeout')
    t.match(hang.message, 'within 300 ms')
    t.ok(Date.now() - started < 2000, 'bounded by timeoutMs')
  })
})

t.test('an upstream echoing our secrets in its error does not get them into messages', async (t) => {
  const as = await tiny(t, (_req, res, body) => {
    const sent = new URLSearchParams(body)
    if (sent.get('code') === 'echo-in-content-type') {
      res.writeHead(502, { 'content-type': `text/plain; x=${sent.get('client_secret') ?? ''}` }).end('')
    } else {
      const echoed = ['code_verifier', 'refresh_token', 'client_secret'].map((name) => sent.get(name) ?? '')
      sendJson(res, 400, { error: sent.get('code') ?? 'invalid_grant', error_description: `bad ${echoed.join(' / ')}` })
    }
  })
  const { upstream } = forTiny(t, as, { clientSecret: 'client-secret-xyz' })
  const exchange = await rejection(upstream.exchangeCode({ code: 'code-xyz', codeVerifier: 'verifier-xyz' }))
  t.equal(exchange.kind, 'oauth_error')
  t.equal(exchange.status, 400)
  t.equal(exchange.oauthError, '[redacted]')
  t.notMatch(exchange.message, /xyz/)
  t.notOk('cause' in exchange, 'no cause carrying the original message')
  const refresh = await rejection(upstream.refresh('refresh-xyz'))
  t.notMatch(refresh.message, /xyz/)
  const header = await rejection(upstream.exchangeCode({ code: 'echo-in-content-type', codeVerifier: 'v' }))
  t.equal(header.kind, 'bad_response')
  t.equal(header.status, 502)
  t.notMatch(header.message, /xyz/)
})

t.test('parseTokenResponse', async (t) => {
  const parse = (status: number, body: string, contentType: string | undefined = 'application/json') =>
    parseTokenResponse(status, contentType, body, NOW)
  const fail = (status: number, body: string, contentType?: string): UpstreamError => {
    try {
      parse(status, body, contentType)
    } catch (err) {
      if (err instanceof UpstreamError) return err
      throw err
    }
    throw new Error('expected a failure')
  }

  t.test('expires_in: number, numeric string, absent (landscape bug 13)', async (t) => {
    t.equal(parse(200, '{"access_token":"a","expires_in":28800}').expiresAt, NOW + 28_800_000)
    t.equal(parse(200, '{"access_token":"a","expires_in":"28800"}').expiresAt, NOW + 28_800_000)
    t.equal(parse(200, 'access_token=a&expires_in=28800', 'application/x-www-form-urlencoded').expiresAt,
      NOW + 28_800_000)
    t.equal(parse(200, '{"access_token":"a","expires_in":" 1.5 "}').expiresAt, NOW + 1500)
    t.notOk('expiresAt' in parse(200, '{"access_token":"a"}'), 'absent: never expires (GitHub OAuth App)')
  })

  t.test('expires_in 0 or negative is already expired, never "no expiry" (landscape bug 14)', async (t) => {
    t.equal(parse(200, '{"access_token":"a","expires_in":0}').expiresAt, NOW)
    t.equal(parse(200, '{"access_token":"a","expires_in":"-5"}').expiresAt, NOW)
  })

  t.test('garbage expires_in counts as absent', async (t) => {
    for (const value of ['"soon"', '""', 'null', 'true', '1e400', '{}']) {
      t.equal(parse(200, `{"access_token":"a","expires_in":${value}}`).expiresAt, undefined, value)
    }
  })

  t.test('an error is a failure whatever the HTTP status ' +
    '(GitHub answers errors with 200; golang/oauth2#274)', async (t) => {
    const json = fail(200,
      '{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}')
    t.equal(json.kind, 'oauth_error')
    t.equal(json.oauthError, 'bad_verification_code')
    t.equal(json.status, 200)
    const form = fail(200, 'error=redirect_uri_mismatch&error_description=The+redirect_uri+MUST+match',
      'application/x-www-form-urlencoded')
    t.equal(form.oauthError, 'redirect_uri_mismatch')
    t.match(form.message, 'The redirect_uri MUST match')
    const withToken = fail(200, '{"error":"invalid_grant","access_token":"a"}')
    t.equal(withToken.oauthError, 'invalid_grant', 'an error wins over an access_token')
    t.equal(fail(400, '{"error":{"message":"x"}}').oauthError, 'unknown_error')
    const noisy = fail(400,
      JSON.stringify({ error: 'e\n\u001b[31m', error_description: 'line\r\nforged: ' + 'x'.repeat(300) }))
    t.equal(noisy.oauthError, 'e??[31m', 'control characters cannot forge log lines')
    t.notMatch(noisy.message, /[\r\n]/)
    t.ok(noisy.message.length < 320, 'the description is bounded')
  })

  t.test('non-2xx without a parsable error, unreadable bodies, missing access_token', async (t) => {
    t.equal(fail(502, '{"message":"bad gateway"}').kind, 'bad_response')
    t.equal(fail(502, '{"message":"bad gateway"}').status, 502)
    t.equal(fail(500, 'Internal Server Error', 'text/plain').kind, 'bad_response')
    t.equal(fail(200, '<html></html>', 'text/html').kind, 'bad_response')
    t.throws(() => parseTokenResponse(200, undefined, '', NOW), { kind: 'bad_response', message: /no content-type/ })
    t.equal(fail(200, '{"access_token":').kind, 'bad_response')
    t.equal(fail(200, '["access_token"]').kind, 'bad_response')
    t.match(fail(200, '{"token_type":"bearer"}').message, 'without an access_token')
    t.equal(fail(200, '{"access_token":""}').kind, 'bad_response')
    t.equal(fail(200, '{"access_token":42}').kind, 'bad_response')
    t.equal(fail(200, '{"error":null}').kind, 'bad_response', 'a null error is no error, and then there is no token')
  })

  t.test('fields: comma scopes, token_type default, refresh token', async (t) => {
    t.same(parse(200, 'access_token=gho_x&scope=repo%2Cgist&token_type=bearer', 'application/x-www-form-urlencoded'),
      { accessToken: 'gho_x', scopes: ['repo', 'gist'], tokenType: 'bearer' })
    t.same(parse(200, '{"access_token":"a","refresh_token":"r","scope":["read:org"],"token_type":""}'),
      { accessToken: 'a', refreshToken: 'r', scopes: ['read:org'], tokenType: 'bearer' })
    t.notOk('refreshToken' in parse(200, '{"access_token":"a","refresh_token":""}'))
    t.same(parse(200, '{"access_token":"a","scope":""}').scopes, [], 'GitHub App tokens: scope is always ""')
  })
})
