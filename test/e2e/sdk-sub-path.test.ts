import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import t from 'tap'
import { signInThroughBothScreens } from '../helpers/cookie-browser.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { startLiveGateway, testStore } from '../helpers/gateway.js'
import { MemoryProvider } from '../helpers/sdk-provider.js'

/*
 * Issue 16 item 3: an MCP SDK client pointed at a toolset sub-path (`/mcp/x/repos`, as the README
 * recommends for GitHub) signs in and works end to end. The SDK's Client and Streamable HTTP transport
 * do everything from the first 401 on; the test only plays the person in the browser. Run again on
 * Redis by test/redis/sdk-sub-path.test.ts.
 */

const REDIRECT_URL = 'http://127.0.0.1:33420/callback'

interface Sent { method: string, url: URL, body: string, status: number }

t.test('issue 16 item 3: MCP SDK client on /mcp/x/repos: 401 discovery, registration, sign-in, tool call, refresh', async (t) => {
  const github = await startFakeGithub({ mode: 'oauth-app' })
  t.teardown(() => github.close())
  const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
  t.teardown(() => mcp.close())

  // The gateway on a real socket whose publicUrl is the URL clients use.
  const { origin, clock } = await startLiveGateway(t, github, { upstreamRs: mcp.url, ...testStore() })

  const serverUrl = new URL(`${origin}/mcp/x/repos`)
  const provider = new MemoryProvider(REDIRECT_URL, 'SDK sub-path client')
  // Bodies are not read: the transport's GET stream never ends.
  const sent: Sent[] = []
  const fetchFn = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const res = await fetch(url, init)
    sent.push({ method: init?.method ?? 'GET', url: new URL(url), body: init?.body === undefined || init.body === null ? '' : String(init.body), status: res.status })
    return res
  }
  const connect = async (): Promise<Client> => {
    const client = new Client({ name: 'sub-path-e2e', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: fetchFn }))
    t.teardown(() => client.close())
    return client
  }
  const tokenRequests = (): URLSearchParams[] => sent.filter((s) => s.method === 'POST' && s.url.pathname === '/token').map((s) => new URLSearchParams(s.body))

  await t.rejects(connect(), { message: /Unauthorized/ }, 'no token yet: the SDK starts an authorization and stops')
  t.equal(sent[0]?.url.href, serverUrl.href)
  t.equal(sent[0]?.status, 401, 'the first request is challenged')
  const prm = sent.find((s) => s.url.pathname.startsWith('/.well-known/oauth-protected-resource'))
  t.equal(prm?.url.href, `${origin}/.well-known/oauth-protected-resource/mcp/x/repos`, 'RFC 9728: the PRM the challenge named, for the sub-path')
  t.equal(provider.discovery?.resourceMetadata?.resource, serverUrl.href, 'RFC 9728 §3.3: its resource is the sub-path')
  t.equal(sent.filter((s) => s.url.pathname === '/register' && s.status === 201).length, 1, 'RFC 7591: registered once')
  const authorizationUrl = provider.authorizationUrls[0]
  t.equal(authorizationUrl?.searchParams.get('resource'), serverUrl.href, 'RFC 8707: the sub-path is the resource asked for')
  if (authorizationUrl === undefined) return

  const redirect = await signInThroughBothScreens(origin, authorizationUrl)
  t.equal(redirect.origin + redirect.pathname, REDIRECT_URL, 'back at the client after login, consent and GitHub')
  t.equal(redirect.searchParams.get('error'), null)
  const code = redirect.searchParams.get('code') ?? ''
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: fetchFn })
  await transport.finishAuth(code)
  const exchange = tokenRequests().at(-1)
  t.equal(exchange?.get('grant_type'), 'authorization_code')
  t.equal(exchange?.get('resource'), serverUrl.href, 'the sub-path again at /token, and accepted (it was invalid_target)')
  t.match(provider.saved, { access_token: /^gwa_/, refresh_token: /^gwr_/ })
  const first = provider.saved

  const client = await connect()
  const echoed = await client.callTool({ name: 'echo', arguments: { text: 'through /mcp/x/repos' } })
  t.same(echoed.content, [{ type: 'text', text: 'through /mcp/x/repos' }], 'a tool call through the gateway')
  const upstreamPaths = new Set(mcp.requests.map((r) => r.path))
  t.same([...upstreamPaths], ['/mcp/x/repos'], 'the upstream was asked at the same sub-path only')

  // Past the access token's life: the next call is challenged and the SDK refreshes on its own.
  clock.advance(3601_000)
  const again = await client.callTool({ name: 'echo', arguments: { text: 'after refresh' } })
  t.same(again.content, [{ type: 'text', text: 'after refresh' }], 'the call succeeds after the refresh')
  const refresh = tokenRequests().at(-1)
  t.equal(refresh?.get('grant_type'), 'refresh_token', 'the SDK refreshed')
  t.equal(refresh?.get('resource'), serverUrl.href, 'with the sub-path as resource, accepted')
  t.not(provider.saved?.access_token, first?.access_token, 'a new access token')
  t.equal(provider.authorizationUrls.length, 1, 'no second sign-in')
})
