import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import t from 'tap'
import { request } from 'undici'
import { build } from '../../examples/host-app/app.js'
// Type-checks the example's entry point too (tsconfig covers it only through what tests import); erased at run time.
import type {} from '../../examples/host-app/server.js'
import { ManualClock } from '../../lib/clock.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { gatewayOptions, hiddenField, visitUpstream } from '../helpers/gateway.js'
import { MemoryProvider } from '../helpers/sdk-provider.js'
import { HttpBrowser, freePort, waitFor } from '../helpers/process.js'

/*
 * examples/host-app: a host app with routes of its own and the gateway under /gw. Started in-process
 * through its build() on a real socket, then driven by the official MCP SDK client (auth() and a tool
 * call) against the fake GitHub and the fake MCP server; and its server.ts started as a process, as a
 * user would run it.
 */

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const REDIRECT_URL = 'http://127.0.0.1:33421/callback'

/** Log lines, parsed, as the host's logger writes them. */
function logSink (): { stream: Writable, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { stream, lines }
}

t.test('examples/host-app in-process: its own routes, and the MCP SDK through the gateway at /gw', async (t) => {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
  t.teardown(() => mcp.close())

  // The socket first, so the public URL (its port) is known before the app is built.
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const { stream, lines } = logSink()
  const { clock: _clock, ...options } = gatewayOptions(
    github,
    new ManualClock(Date.now()),
    { upstreamRs: mcp.url, publicUrl: origin }
  )
  const app = await build({
    gateway: { ...options, username: 'example_user', password: 'example-password' },
    server: { logger: { level: 'info', stream }, serverFactory: (handler) => server.on('request', handler) }
  })
  t.teardown(async () => {
    await app.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  await app.ready()

  const issuer = `${origin}/gw`
  const serverUrl = `${issuer}/mcp`
  const provider = new MemoryProvider(REDIRECT_URL, 'embedding example')
  const fetched: Array<{ url: string, status: number }> = []
  const fetchFn = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const res = await fetch(url, init)
    fetched.push({ url: String(url), status: res.status })
    return res
  }

  await t.test('the host\'s own routes', async (t) => {
    const home = await new HttpBrowser().get(`${origin}/`)
    t.equal(home.status, 200)
    t.strictSame(home.json(), { app: 'host-app', mcp: serverUrl })
    const created = await new HttpBrowser().postJson(`${origin}/api/notes`, { text: 'hello' })
    t.equal(created.status, 201)
    t.strictSame(created.json(), { id: 1, text: 'hello' })
    const invalid = await new HttpBrowser().postJson(`${origin}/api/notes`, { nope: true })
    t.equal(invalid.status, 400, 'the host\'s validation and error format')
    t.match(invalid.json(), { statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request' })
  })

  await t.test('auth(): RFC 9728 PRM and RFC 8414 metadata at the host root for the /gw issuer, registration under /gw', async (t) => {
    t.equal(await auth(provider, { serverUrl, fetchFn }), 'REDIRECT')
    const prm = fetched.find((f) => f.url.includes('/.well-known/oauth-protected-resource'))
    t.strictSame(prm, { url: `${origin}/.well-known/oauth-protected-resource/gw/mcp`, status: 200 }, 'RFC 9728 §3.1: path-inserted, at the host root')
    t.equal(provider.discovery?.resourceMetadata?.resource, serverUrl)
    t.strictSame(provider.discovery?.resourceMetadata?.authorization_servers, [issuer])
    const asMeta = fetched.find((f) => f.url.includes('/.well-known/oauth-authorization-server') || f.url.includes('/.well-known/openid-configuration'))
    t.strictSame(asMeta, { url: `${origin}/.well-known/oauth-authorization-server/gw`, status: 200 }, 'RFC 8414 §3.1: path-inserted, at the host root')
    t.equal(provider.discovery?.authorizationServerMetadata?.issuer, issuer)
    t.ok(fetched.some((f) => f.url === `${issuer}/register` && f.status === 201), 'RFC 7591 registration at /gw/register')
    const authorizationUrl = provider.authorizationUrls[0]
    t.equal(authorizationUrl === undefined ? undefined : authorizationUrl.origin + authorizationUrl.pathname, `${issuer}/authorize`)
    t.equal(authorizationUrl?.searchParams.get('resource'), serverUrl)
  })

  let code = ''
  await t.test('the person in the browser: /gw/authorize → /gw/login → /gw/consent → GitHub → /gw/upstream/callback', async (t) => {
    const authorizationUrl = provider.authorizationUrls[0]
    if (authorizationUrl === undefined) return t.fail('no authorization URL')
    const browser = new HttpBrowser()
    const authorize = await browser.get(authorizationUrl.href)
    t.equal(authorize.status, 302, authorize.body)
    t.match(authorize.headers.location, /^\/gw\/login\?flow=/)
    t.match(authorize.headers['set-cookie'], /; Path=\//, 'the flow cookie covers the prefix')
    const loginPage = await browser.get(`${origin}${authorize.headers.location as string}`)
    t.equal(loginPage.status, 200)
    t.match(loginPage.body, 'action="/gw/login"')
    const fields = { flow: hiddenField(loginPage.body, 'flow'), csrf: hiddenField(loginPage.body, 'csrf') }
    const login = await browser.postForm(`${issuer}/login`, { ...fields, username: 'example_user', password: 'example-password' })
    t.equal(login.status, 303, login.body)
    t.match(login.headers.location, /^\/gw\/consent\?flow=/)
    const consentPage = await browser.get(`${origin}${login.headers.location as string}`)
    t.match(consentPage.body, 'action="/gw/consent"')
    const consent = await browser.postForm(`${issuer}/consent`, { ...fields, decision: 'approve' })
    t.equal(consent.status, 303, consent.body)
    const upstream = new URL(consent.headers.location as string)
    t.equal(upstream.searchParams.get('redirect_uri'), `${issuer}/upstream/callback`, 'the upstream callback is under the prefix')
    const callback = await visitUpstream(upstream.href)
    const done = await browser.get(callback)
    t.equal(done.status, 302, done.body)
    const redirect = new URL(done.headers.location as string)
    t.equal(redirect.searchParams.get('iss'), issuer, 'RFC 9207 iss is the prefixed issuer')
    t.equal(redirect.searchParams.get('state'), provider.states[0])
    code = redirect.searchParams.get('code') ?? ''
  })

  await t.test('auth() with the code, then a tool call through /gw/mcp with the SDK client', async (t) => {
    t.equal(await auth(provider, { serverUrl, authorizationCode: code, fetchFn }), 'AUTHORIZED')
    t.match(provider.saved, { token_type: 'Bearer', access_token: /^gwa_/, scope: 'mcp' })
    t.ok(fetched.some((f) => f.url === `${issuer}/token` && f.status === 200), 'the code exchange at /gw/token')

    const client = new Client({ name: 'embedding-example', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider }))
    t.teardown(async () => { await client.close().catch(() => {}) })
    const result = await client.callTool({ name: 'echo', arguments: { text: 'through the host app' } })
    t.strictSame(result.content, [{ type: 'text', text: 'through the host app' }])
    const proxied = mcp.requests.filter((r) => r.method === 'POST')
    t.ok(proxied.length > 0)
    t.ok(proxied.every((r) => r.path === '/mcp' && /^Bearer gh[ou]_/.test(String(r.headers.authorization))), 'the upstream got /mcp with the GitHub token, never the gateway\'s')
  })

  await t.test('the gateway logged through the host\'s logger', async (t) => {
    const requestLines = lines.filter((line) => typeof (line.req as { url?: string } | undefined)?.url === 'string')
    t.ok(requestLines.some((line) => (line.req as { url: string }).url.startsWith('/gw/')), 'Fastify\'s request lines for /gw routes')
    t.ok(lines.some((line) => line.msg === 'login succeeded' && typeof line.reqId === 'string'), 'the gateway\'s own events, with the request id')
    t.notOk(lines.some((line) => /gh[oupr]_|gwa_|gwr_/.test(JSON.stringify(line))), 'no token in the host\'s logs')
  })
})

t.test('examples/host-app/server.ts as a process: the host\'s routes, the gateway\'s health and the root discovery document', async (t) => {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [...process.execArgv, 'examples/host-app/server.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      PUBLIC_URL: origin,
      LOG_LEVEL: 'warn',
      GITHUB_CLIENT_ID: 'example-client',
      GITHUB_CLIENT_SECRET: 'example-secret',
      GATEWAY_SECRET: createHash('sha256').update('example').digest('hex')
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })

  const health = await waitFor(`the example to answer (output: ${output.slice(-2000)})`, async () => {
    if (child.exitCode !== null) throw new Error(`the example exited with ${child.exitCode}: ${output.slice(-2000)}`)
    try {
      const res = await request(`${origin}/gw/healthz`)
      return { status: res.statusCode, body: await res.body.json() }
    } catch {
      return undefined
    }
  }, 20_000, 50)
  t.strictSame(health, { status: 200, body: { status: 'ok' } })

  const home = await request(`${origin}/`)
  t.strictSame(await home.body.json(), { app: 'host-app', mcp: `${origin}/gw/mcp` })
  const metadata = await request(`${origin}/.well-known/oauth-authorization-server/gw`)
  t.equal(metadata.statusCode, 200)
  t.match(await metadata.body.json(), { issuer: `${origin}/gw`, authorization_endpoint: `${origin}/gw/authorize` })
  t.match(output, 'published defaults', 'the gateway\'s boot warning went to the host\'s log (stdout)')

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM closes the app')
})
