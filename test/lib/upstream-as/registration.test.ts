import t from 'tap'
import { deriveKey, hashSecret } from '../../../lib/crypto.js'
import {
  authorize, github, make, NOW, REDIRECT_URI, registeringAsMetadata, rejection, SEAL_KEY, sendJson, tiny
} from '../../helpers/upstream-as.js'
import type { Recorded } from '../../helpers/upstream-as.js'

/**
 * The gateway's client at the upstream AS (lib/upstream-as/registration.ts): configured, or registered
 * and stored sealed.
 */

t.test('client registration', async (t) => {
  t.test('registers at the advertised registration_endpoint, once per shared store ' +
    '(landscape bugs 15 and §4.3)', async (t) => {
    const fake = await github(t, { dcr: true })
    const first = make(t, { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer })
    const { client } = await first.upstream.resolve()
    t.equal(client.authMethod, 'client_secret_post')
    t.ok(client.clientSecret)
    const registrations = fake.requests.filter((r) => r.path === '/login/oauth/register')
    t.equal(registrations.length, 1)
    t.same(JSON.parse(registrations[0]?.body ?? '{}'), {
      client_name: 'mcp-oauth-gateway',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post'
    })
    const key = 'upstream:client:' + hashSecret(`${fake.issuer}/register ${REDIRECT_URI}`)
    const stored = await first.store.get<Record<string, unknown>>(key)
    t.match(stored, { clientId: client.clientId, authMethod: 'client_secret_post', sealedSecret: /^v1\./ },
      'persisted under a key hashed from the endpoint and redirect URI')
    t.notOk(JSON.stringify(stored).includes(client.clientSecret ?? '?'),
      'the secret is sealed at rest, never in the clear')

    const { code, verifier } = await authorize(first.upstream)
    const tokens = await first.upstream.exchangeCode({ code, codeVerifier: verifier })
    t.ok(fake.isValidAccessToken(tokens.accessToken), 'the registered client can exchange a code')

    const second = make(t, { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer }, first.store)
    t.same((await second.upstream.resolve()).client, client, 'a restarted instance reuses the registration')
    t.equal(fake.requests.filter((r) => r.path === '/login/oauth/register').length, 1, 'no second registration')
  })

  t.test('a stored registration that no configured secret opens, or with its secret in the clear, ' +
    'is replaced', async (t) => {
    const fake = await github(t, { dcr: true })
    const settings = { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer }
    const registrations = (): number => fake.requests.filter((r) => r.path === '/login/oauth/register').length
    const first = make(t, settings)
    const original = (await first.upstream.resolve()).client
    const key = 'upstream:client:' + hashSecret(`${fake.issuer}/register ${REDIRECT_URI}`)

    const rotated = deriveKey('the-next-operator-secret-of-32-chars!', 'upstream-client-seal')
    const duringRotation = make(t, settings, first.store, [rotated, SEAL_KEY])
    t.same((await duringRotation.upstream.resolve()).client, original, 'an older secret still listed opens it')
    t.equal(registrations(), 1)

    const afterRotation = make(t, settings, first.store, [rotated])
    const renewed = (await afterRotation.upstream.resolve()).client
    t.equal(registrations(), 2, 'the old secret dropped: registers again')
    t.not(renewed.clientId, original.clientId)
    const resealed = await first.store.get<Record<string, unknown>>(key)
    t.equal(resealed?.['clientId'], renewed.clientId, 'and the new registration replaces the record')

    const tampered = { ...resealed, sealedSecret: String(resealed?.['sealedSecret']).slice(0, -4) + 'AAAA' }
    await first.store.set(key, tampered, 60_000)
    await make(t, settings, first.store, [rotated]).upstream.resolve()
    t.equal(registrations(), 3, 'a record that does not authenticate is not used')

    await first.store.set(key, { clientId: 'legacy', clientSecret: 'in-the-clear', authMethod: 'client_secret_post' },
      60_000)
    const legacy = (await make(t, settings, first.store).upstream.resolve()).client
    t.equal(registrations(), 4, 'a record with its secret in the clear is not trusted')
    t.not(legacy.clientId, 'legacy')
    t.notOk(JSON.stringify(await first.store.get(key)).includes('in-the-clear'),
      'the secret in the clear is overwritten')
  })

  t.test('GitHub has no DCR: a registration error that says to pass --upstream-client-id ' +
    '(github/github-mcp-server#1404)', async (t) => {
    const fake = await github(t)
    const { upstream } = make(t, { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'registration')
    t.match(err.message, '--upstream-client-id')
    t.match(err.message, new URL(fake.origin).host)
    const direct = make(t, {
      resourceUrl: 'https://rs.example/mcp',
      authorizeEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token'
    })
    const directErr = await rejection(direct.upstream.resolve())
    t.equal(directErr.kind, 'registration', 'direct endpoints without a client id')
    t.match(directErr.message, 'github.com')
  })

  t.test('registration refused, or answered without a client_id', async (t) => {
    let reply: [number, unknown] = [400, { error: 'invalid_client_metadata', error_description: 'nope' }]
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        sendJson(res, 200, registeringAsMetadata(origin))
      } else sendJson(res, reply[0], reply[1])
    })
    const settings = { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin }
    const refused = await rejection(make(t, settings).upstream.resolve())
    t.equal(refused.kind, 'registration')
    t.equal(refused.status, 400)
    t.equal(refused.oauthError, 'invalid_client_metadata')
    t.match(refused.message, 'HTTP 400 (invalid_client_metadata)')

    reply = [500, 'oops']
    const broken = await rejection(make(t, settings).upstream.resolve())
    t.equal(broken.status, 500)
    t.equal(broken.oauthError, undefined)

    reply = [200, { client_secret: 'x' }]
    const noId = await rejection(make(t, settings).upstream.resolve())
    t.equal(noId.kind, 'registration')
    t.match(noId.message, 'no client_id')
  })

  t.test('a registration with Basic auth and an expiring secret; a public registration', async (t) => {
    let registered: Record<string, unknown> = {}
    const tokenRequests: Recorded[] = []
    const as = await tiny(t, (req, res, body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        sendJson(res, 200, registeringAsMetadata(origin))
      } else if (req.url === '/register') sendJson(res, 200, registered)
      else {
        tokenRequests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
        sendJson(res, 200, { access_token: 'at', token_type: 'Bearer' })
      }
    })
    const settings = { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin }
    registered = {
      client_id: 'c 1',
      client_secret: 'p&ss:word',
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret_expires_at: NOW / 1000 + 3600
    }
    const basic = make(t, settings)
    t.same((await basic.upstream.resolve()).client,
      { clientId: 'c 1', clientSecret: 'p&ss:word', authMethod: 'client_secret_basic' })
    const tokens = await basic.upstream.exchangeCode({ code: 'the-code', codeVerifier: 'v'.repeat(43) })
    t.equal(tokens.tokenType, 'Bearer')
    t.equal(tokenRequests[0]?.headers.authorization, `Basic ${Buffer.from('c+1:p%26ss%3Aword').toString('base64')}`,
      'RFC 6749 §2.3.1 form-encodes each part')
    const form = new URLSearchParams(tokenRequests[0]?.body)
    t.equal(form.get('client_id'), null, 'one authentication method only')
    t.equal(form.get('client_secret'), null)
    const key = 'upstream:client:' + hashSecret(`${as.origin}/register ${REDIRECT_URI}`)
    basic.clock.advance(3600 * 1000)
    t.equal(await basic.store.get(key), undefined, 'stored no longer than the secret lives')

    registered = {
      client_id: 'c2',
      client_secret: 'old',
      token_endpoint_auth_method: 'private_key_jwt',
      client_secret_expires_at: NOW / 1000 - 1
    }
    const expired = make(t, settings)
    t.same((await expired.upstream.resolve()).client,
      { clientId: 'c2', clientSecret: 'old', authMethod: 'client_secret_post' }, 'an unknown method falls back to post')
    t.equal(await expired.store.get(key), undefined, 'an already expired secret is not stored')

    registered = { client_id: 'c3', token_endpoint_auth_method: 'none' }
    const open = make(t, settings)
    t.same((await open.upstream.resolve()).client, { clientId: 'c3', authMethod: 'none' })
    registered = { client_id: 'c4', token_endpoint_auth_method: 'none' }
    t.same((await make(t, settings, open.store).upstream.resolve()).client, { clientId: 'c3', authMethod: 'none' },
      'a public registration is reused')
    await open.upstream.exchangeCode({ code: 'the-code', codeVerifier: 'v'.repeat(43) })
    const publicForm = new URLSearchParams(tokenRequests[1]?.body)
    t.equal(publicForm.get('client_id'), 'c3')
    t.equal(publicForm.get('client_secret'), null)
    t.equal(tokenRequests[1]?.headers.authorization, undefined)
  })

  t.test('an AS that forgot our registration (invalid_client) makes the next resolve register again', async (t) => {
    let registrations = 0
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        sendJson(res, 200, registeringAsMetadata(origin))
      } else if (req.url === '/register') sendJson(res, 201, { client_id: `c${++registrations}`, client_secret: 's' })
      else sendJson(res, 401, { error: 'invalid_client' })
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin })
    t.equal((await upstream.resolve()).client.clientId, 'c1')
    const err = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(err.oauthError, 'invalid_client')
    t.equal((await upstream.resolve()).client.clientId, 'c2')

    const stat = make(t,
      { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin, clientId: 'static', clientSecret: 's' })
    await rejection(stat.upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal((await stat.upstream.resolve()).client.clientId, 'static', 'a configured client is kept')
  })
})
