import t from 'tap'
import { tiny, sendJson, github, make, forGithub, authorize, rejection, paths } from '../../helpers/upstream-as.js'

/** The discovery of the upstream's endpoints (lib/upstream-as/discovery.ts), through the client that uses it. */

t.test('discovery', async (t) => {
  t.test('finds GitHub through the resource_metadata of the RS 401 challenge ' +
    '(github/github-mcp-server#1804)', async (t) => {
    const fake = await github(t)
    const { upstream } = make(t,
      { resourceUrl: fake.resourceUrl, clientId: fake.clientId, clientSecret: fake.clientSecret })
    t.equal(upstream.displayName, new URL(fake.origin).host, 'before discovery: the best guess from the settings')
    const resolved = await upstream.resolve()
    t.same(resolved.endpoints, {
      issuer: fake.issuer,
      authorizationEndpoint: fake.authorizeEndpoint,
      tokenEndpoint: fake.tokenEndpoint,
      scopesSupported: ['repo', 'read:org', 'gist', 'notifications', 'user', 'user:email']
    })
    t.same(resolved.scopes, ['repo', 'read:org', 'gist'],
      'the PRM scopes_supported win over the AS ones (MCP scope selection)')
    t.same(resolved.client,
      { clientId: fake.clientId, clientSecret: fake.clientSecret, authMethod: 'client_secret_post' })
    t.same(paths(fake.requests), [
      'GET /mcp',
      'GET /.well-known/oauth-protected-resource/mcp',
      'GET /.well-known/oauth-authorization-server/login/oauth'
    ], 'RFC 9728 and RFC 8414 path insertion, not the path-appended URLs (landscape bug 15)')
    t.notOk(fake.requests[0]?.headers.authorization, 'the probe is unauthenticated')
    t.equal(upstream.displayName, new URL(fake.origin).host)
  })

  t.test('a token-form resource_metadata in a multi-challenge header is read too', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res) => {
      if (req.url === '/mcp') {
        const pointer = `${fake.origin}/.well-known/oauth-protected-resource/mcp`
        res.writeHead(401, { 'www-authenticate': ['Basic realm="x"', `Bearer resource_metadata=${pointer}`] }).end()
      } else res.writeHead(404).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp`, clientId: 'id' })
    t.equal((await upstream.resolve()).endpoints.issuer, fake.issuer)
    t.same(paths(rs.requests), ['GET /mcp'])
  })

  t.test('an escaped quoted resource_metadata and a 403 challenge', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res) => {
      const pointer = `${fake.origin}/.well-known/oauth-protected-resource/m\\cp`
      const challenge = `Bearer error="insufficient_scope", resource_metadata="${pointer}"`
      res.writeHead(403, { 'www-authenticate': challenge }).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp`, clientId: 'id' })
    t.equal((await upstream.resolve()).endpoints.issuer, fake.issuer)
  })

  t.test('falls back to the path-inserted PRM when the 401 names no resource_metadata ' +
    '(landscape bug 15)', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/mcp/') {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="mcp", resource_metadata="not a url"' }).end()
      } else if (req.url === '/.well-known/oauth-protected-resource/mcp') {
        sendJson(res, 200, { resource: `${origin}/mcp`, authorization_servers: [fake.issuer] })
      } else res.writeHead(404).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp/`, clientId: 'id' })
    const resolved = await upstream.resolve()
    t.equal(resolved.endpoints.issuer, fake.issuer)
    t.same(resolved.scopes, ['repo', 'read:org', 'gist', 'notifications', 'user', 'user:email'],
      'no PRM scopes: the AS scopes_supported')
    t.same(paths(rs.requests), ['GET /mcp/', 'GET /.well-known/oauth-protected-resource/mcp'],
      'the trailing slash is dropped before insertion')
  })

  t.test('falls back to the root PRM', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res) => {
      if (req.url === '/.well-known/oauth-protected-resource') {
        sendJson(res, 200, { authorization_servers: [fake.issuer], scopes_supported: 'repo gist' })
      } else if (req.url === '/mcp') {
        res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': a stream that never ends\n\n')
      } else res.writeHead(404).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp`, clientId: 'id' })
    const resolved = await upstream.resolve()
    t.equal(resolved.endpoints.issuer, fake.issuer, 'an endless 200 stream at the RS does not hang discovery')
    t.same(resolved.scopes, ['repo', 'read:org', 'gist', 'notifications', 'user', 'user:email'],
      'a non-array PRM scopes_supported is ignored')
    t.same(paths(rs.requests),
      ['GET /mcp', 'GET /.well-known/oauth-protected-resource/mcp', 'GET /.well-known/oauth-protected-resource'])
  })

  t.test('a resource at the root tries the root PRM once', async (t) => {
    const rs = await tiny(t, (_req, res) => { res.writeHead(404).end() })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/`, clientId: 'id' })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'discovery')
    t.same(paths(rs.requests), ['GET /', 'GET /.well-known/oauth-protected-resource'])
  })

  t.test('no PRM anywhere: a discovery error naming every URL tried', async (t) => {
    const rs = await tiny(t, (req, res) => {
      if (req.url === '/.well-known/oauth-protected-resource/mcp') {
        sendJson(res, 200, { authorization_servers: ['ftp://as.example'] })
      } else if (req.url === '/.well-known/oauth-protected-resource/x') sendJson(res, 200, { resource: 'x' })
      else if (req.url === '/.well-known/oauth-protected-resource') sendJson(res, 200, ['not', 'an', 'object'])
      else res.writeHead(401).end()
    })
    const { upstream } = make(t,
      { resourceUrl: `${rs.origin}/mcp?token=s3cret-query`, clientId: 'id', clientSecret: 'the-client-secret' })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'discovery')
    t.match(err.message, `${rs.origin}/mcp (HTTP 401, no resource_metadata)`)
    t.match(err.message, `${rs.origin}/.well-known/oauth-protected-resource/mcp (no authorization_servers)`)
    t.match(err.message, `${rs.origin}/.well-known/oauth-protected-resource (not a JSON object)`)
    t.match(err.message, '--upstream-as')
    t.notMatch(err.message, 's3cret-query', 'queries are not logged')
    t.notMatch(err.message, 'the-client-secret')
    const missing = await rejection(make(t, { resourceUrl: `${rs.origin}/x`, clientId: 'id' }).upstream.resolve())
    t.match(missing.message, `${rs.origin}/.well-known/oauth-protected-resource/x (no authorization_servers)`)
  })

  t.test('GitHub path-inserted AS metadata from --upstream-as (github/github-mcp-server#2901)', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    t.equal((await upstream.resolve()).endpoints.tokenEndpoint, fake.tokenEndpoint)
    t.same(paths(fake.requests), ['GET /.well-known/oauth-authorization-server/login/oauth'],
      'no RS probe when the AS is given')
    t.equal(upstream.displayName, new URL(fake.origin).host)
  })

  t.test('the display name of a GitHub deployment is github.com before any request', async (t) => {
    const { upstream } = make(t,
      { resourceUrl: 'https://api.githubcopilot.com/mcp/', issuerUrl: 'https://github.com/login/oauth' })
    t.equal(upstream.displayName, 'github.com')
    t.equal(make(t, { resourceUrl: 'not a url' }).upstream.displayName, 'not a url')
  })

  t.test('OIDC fallbacks in the MCP order for an issuer with a path', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/tenant/.well-known/openid-configuration') {
        sendJson(res, 200, {
          issuer: `${origin}/tenant`,
          authorization_endpoint: `${origin}/tenant/authorize`,
          token_endpoint: `${origin}/tenant/token`,
          registration_endpoint: 'not a url',
          revocation_endpoint: `${origin}/tenant/revoke`
        }, { 'content-type': 'application/json, application/json' })
      } else sendJson(res, 404, { error: 'not_found' })
    })
    const { upstream } = make(t,
      { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/tenant/`, clientId: 'id' })
    const { endpoints, scopes, client } = await upstream.resolve()
    t.same(endpoints, {
      issuer: `${as.origin}/tenant`,
      authorizationEndpoint: `${as.origin}/tenant/authorize`,
      tokenEndpoint: `${as.origin}/tenant/token`,
      revocationEndpoint: `${as.origin}/tenant/revoke`
    }, 'a trailing slash on --upstream-as is tolerated; a bad registration_endpoint is dropped')
    t.same(scopes, [], 'no scopes anywhere: none are sent')
    t.same(client, { clientId: 'id', authMethod: 'none' }, 'a client id without a secret is a public client')
    t.same(paths(as.requests), [
      'GET /.well-known/oauth-authorization-server/tenant',
      'GET /.well-known/openid-configuration/tenant',
      'GET /tenant/.well-known/openid-configuration'
    ])
  })

  t.test('OIDC fallback for an issuer without a path, and metadata without an issuer field', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/openid-configuration') {
        sendJson(res, 200, { authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` })
      } else res.writeHead(500).end()
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin, clientId: 'id' })
    t.equal((await upstream.resolve()).endpoints.issuer, as.origin)
    t.same(paths(as.requests), ['GET /.well-known/oauth-authorization-server', 'GET /.well-known/openid-configuration'])
  })

  t.test('metadata for another issuer or without endpoints is discarded (RFC 8414 §3.3)', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      const endpoints = { authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` }
      if (req.url === '/.well-known/oauth-authorization-server/as') {
        sendJson(res, 200, { issuer: 'https://evil.example/as?x=1', ...endpoints })
      } else if (req.url === '/.well-known/openid-configuration/as') {
        sendJson(res, 200, { issuer: 'evil\nissuer', ...endpoints })
      } else sendJson(res, 200, { issuer: `${origin}/as`, authorization_endpoint: `${origin}/a` })
    })
    const { upstream } = make(t,
      { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/as`, clientId: 'id' })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'discovery')
    t.match(err.message, 'names issuer https://evil.example/as)')
    t.match(err.message, 'names issuer evil?issuer)', 'upstream text is made printable')
    t.match(err.message, 'no authorization_endpoint or token_endpoint')
    t.match(err.message, 'Pass both upstream endpoints')
  })

  t.test('discovery follows a few redirects, and not a loop', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server/moved') {
        res.writeHead(301, { location: '/.well-known/oauth-authorization-server/moved/' }).end()
      } else if (req.url === '/.well-known/oauth-authorization-server/moved/') {
        res.writeHead(308, { location: `${origin}/final` }).end()
      } else if (req.url === '/final') {
        sendJson(res, 200,
          { issuer: `${origin}/moved`, authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` })
      } else if (req.url === '/.well-known/oauth-authorization-server/broken') {
        res.writeHead(302, { location: 'http://[::1' }).end()
      } else if (req.url === '/.well-known/oauth-authorization-server/loop') {
        res.writeHead(307, { location: '/.well-known/oauth-authorization-server/loop' }).end()
      } else if (req.url === '/.well-known/openid-configuration/loop') {
        res.writeHead(302, { location: 'ftp://example.com/' }).end()
      } else if (req.url?.includes('broken') === true) res.writeHead(404).end()
      else res.writeHead(303).end()
    })
    const moved = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/moved`, clientId: 'id' })
    t.equal((await moved.upstream.resolve()).endpoints.tokenEndpoint, `${as.origin}/t`)
    t.same(paths(as.requests), [
      'GET /.well-known/oauth-authorization-server/moved',
      'GET /.well-known/oauth-authorization-server/moved/',
      'GET /final'
    ])

    const looping = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/loop`, clientId: 'id' })
    const err = await rejection(looping.upstream.resolve())
    t.match(err.message, `${as.origin}/.well-known/oauth-authorization-server/loop (too many redirects)`)
    t.match(err.message, `${as.origin}/.well-known/openid-configuration/loop (bad redirect)`, 'only http(s) redirects')
    t.match(err.message, `${as.origin}/loop/.well-known/openid-configuration (HTTP 303)`,
      'a redirect without a location is a plain failure')

    const broken = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/broken`, clientId: 'id' })
    t.match((await rejection(broken.upstream.resolve())).message,
      `${as.origin}/.well-known/oauth-authorization-server/broken (bad redirect)`)
    t.equal(as.requests.filter((r) => r.path === '/.well-known/oauth-authorization-server/loop').length, 4,
      'three redirects followed, then given up')
  })

  t.test('direct endpoints skip discovery entirely', async (t) => {
    const fake = await github(t)
    const { upstream } = make(t, {
      resourceUrl: fake.resourceUrl,
      clientId: fake.clientId,
      clientSecret: fake.clientSecret,
      authorizeEndpoint: `${fake.authorizeEndpoint}?allow_signup=false&scope=ignored`,
      tokenEndpoint: fake.tokenEndpoint,
      scopes: ['repo', 'read:org']
    })
    const resolved = await upstream.resolve()
    t.same(resolved.endpoints, {
      authorizationEndpoint: `${fake.authorizeEndpoint}?allow_signup=false&scope=ignored`,
      tokenEndpoint: fake.tokenEndpoint
    })
    t.same(resolved.scopes, ['repo', 'read:org'])
    const { code, verifier, callback } = await authorize(upstream)
    t.equal(callback.searchParams.get('state'), 'st-1')
    const tokens = await upstream.exchangeCode({ code, codeVerifier: verifier })
    t.same(tokens.scopes, ['repo', 'read:org'])
    t.same(paths(fake.requests), ['GET /login/oauth/authorize', 'POST /login/oauth/access_token'],
      'no metadata or RS request at all')
    t.equal(upstream.displayName, new URL(fake.origin).host, 'named after the authorize endpoint host')
    t.equal(new URL(`http://x${fake.requests[0]?.path ?? ''}`).searchParams.get('allow_signup'), 'false',
      'the endpoint query is kept')
  })

  t.test('direct endpoints with --upstream-as keep it as the issuer', async (t) => {
    const { upstream } = make(t, {
      resourceUrl: 'https://api.githubcopilot.com/mcp/',
      issuerUrl: 'https://github.com/login/oauth',
      authorizeEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      clientId: 'id'
    })
    t.equal((await upstream.resolve()).endpoints.issuer, 'https://github.com/login/oauth')
    t.equal(upstream.displayName, 'github.com')
  })

  t.test('one configured endpoint overrides the discovered one', async (t) => {
    const fake = await github(t)
    const a = forGithub(t, fake, { tokenEndpoint: `${fake.origin}/elsewhere/token` })
    const ra = await a.upstream.resolve()
    t.equal(ra.endpoints.tokenEndpoint, `${fake.origin}/elsewhere/token`)
    t.equal(ra.endpoints.authorizationEndpoint, fake.authorizeEndpoint)
    const b = forGithub(t, fake, { authorizeEndpoint: `${fake.origin}/elsewhere/authorize` })
    t.equal((await b.upstream.resolve()).endpoints.authorizationEndpoint, `${fake.origin}/elsewhere/authorize`)
  })

  t.test('configured URLs must be http(s)', async (t) => {
    for (const settings of [
      { resourceUrl: 'ftp://rs.example/mcp' },
      { resourceUrl: 'https://rs.example/mcp', issuerUrl: 'github.com/login/oauth' },
      {
        resourceUrl: 'https://rs.example/mcp',
        authorizeEndpoint: 'javascript:alert(1)',
        tokenEndpoint: 'https://as.example/t'
      },
      { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: 'https://as.example/a', tokenEndpoint: '/token' }
    ]) {
      const err = await rejection(make(t, settings).upstream.resolve())
      t.equal(err.kind, 'discovery')
      t.match(err.message, /is not an http\(s\) URL/)
    }
  })
})
