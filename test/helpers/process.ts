import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { request } from 'undici'
import { createPkcePair } from '../../lib/pkce.js'
import type { FakeGithub } from './fake-github.js'
import { hiddenField, visitUpstream, type RegisteredClient } from './gateway.js'

/*
 * The gateway as the real `server.ts` process (what `npm start` and the Docker image run), for tests
 * that kill it, run two of it, or take its store away: spawned with this process's exec arguments, so
 * inside tap the TypeScript loader comes along and no build is needed.
 */

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Teardown { teardown (fn: () => unknown): void }

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Polls until `probe` returns something other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T> (
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 5000,
  everyMs = 25
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** The flags of a gateway in front of a fake GitHub (authorization server) and a fake MCP server. */
export function gatewayFlags (p: {
  port: number,
  publicUrl: string,
  store: string,
  storePrefix: string,
  secret: string,
  github: FakeGithub,
  upstreamRs: string,
  extra?: string[]
}): string[] {
  return [
    '--host', '127.0.0.1',
    '--port', String(p.port),
    '--public-url', p.publicUrl,
    '--store', p.store,
    '--store-prefix', p.storePrefix,
    '--secret', p.secret,
    '--upstream-rs', p.upstreamRs,
    '--upstream-client-id', p.github.clientId,
    '--upstream-client-secret', p.github.clientSecret,
    '--upstream-authorize-endpoint', p.github.authorizeEndpoint,
    '--upstream-token-endpoint', p.github.tokenEndpoint,
    '--upstream-scopes', 'repo,read:org',
    '--upstream-timeout', '2000',
    '--log-level', 'warn',
    ...(p.extra ?? [])
  ]
}

/** One `node server.ts` process on 127.0.0.1, its output kept for the report when something fails. */
export class GatewayProcess {
  readonly port: number
  readonly origin: string
  readonly child: ChildProcess
  /** Everything it wrote, stdout and stderr (JSON log lines). */
  output = ''

  private constructor (port: number, child: ChildProcess) {
    this.port = port
    this.origin = `http://127.0.0.1:${port}`
    this.child = child
    child.stdout?.on('data', (chunk: Buffer) => { this.output += chunk.toString('utf8') })
    child.stderr?.on('data', (chunk: Buffer) => { this.output += chunk.toString('utf8') })
  }

  /** Spawns `server.ts` with `flags` (which must name `port`) and waits until /healthz answers. Killed at teardown. */
  static async start (
    t: Teardown,
    port: number,
    flags: string[],
    env: Record<string, string> = {},
    readyTimeoutMs = 15_000
  ): Promise<GatewayProcess> {
    // Nothing of the caller's MCP_GATEWAY_* configuration leaks in: the flags and `env` are the whole configuration.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MCP_GATEWAY_')))
    const child = spawn(process.execPath, [...process.execArgv, 'server.ts', ...flags], {
      cwd: REPO_ROOT,
      env: { ...inherited, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const gateway = new GatewayProcess(port, child)
    t.teardown(async () => { await gateway.kill() })
    await waitFor(`the gateway on port ${port} to answer /healthz (output: ${gateway.output.slice(-2000)})`, async () => {
      if (!gateway.alive) throw new Error(`the gateway exited with ${String(child.exitCode ?? child.signalCode)}: ${gateway.output.slice(-2000)}`)
      try {
        const res = await request(`${gateway.origin}/healthz`, { headersTimeout: 1000, bodyTimeout: 1000 })
        await res.body.dump()
        return res.statusCode === 200
      } catch {
        return false
      }
    }, readyTimeoutMs, 50)
    return gateway
  }

  get alive (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** SIGKILL (no shutdown hooks run: a crash, an OOM kill), and waits for the exit. */
  async kill (): Promise<void> {
    if (!this.alive) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill('SIGKILL')
    await exited
  }
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  json: <T = Record<string, unknown>>() => T
}

/**
 * Raw HTTP to any replica with one cookie jar, as one browser behind a load balancer: a cookie set by
 * one replica goes to the other (they sign with the same secret).
 */
export class HttpBrowser {
  readonly cookies = new Map<string, string>()

  async get (url: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    return await this.send('GET', url, headers)
  }

  async postForm (
    url: string,
    form: Record<string, string>,
    headers: Record<string, string> = {}
  ): Promise<HttpResponse> {
    return await this.send('POST', url, { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, new URLSearchParams(form).toString())
  }

  async postJson (url: string, value: unknown, headers: Record<string, string> = {}): Promise<HttpResponse> {
    return await this.send('POST', url, { ...headers, 'content-type': 'application/json' }, JSON.stringify(value))
  }

  async send (method: 'GET' | 'POST' | 'DELETE', url: string, headers: Record<string, string> = {}, body?: string): Promise<HttpResponse> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    const res = await request(url, {
      method,
      headers: { ...headers, ...(cookie === '' ? {} : { cookie }) },
      ...(body === undefined ? {} : { body }),
      headersTimeout: 10_000,
      bodyTimeout: 10_000
    })
    const text = await res.body.text()
    const setCookie = res.headers['set-cookie']
    for (const line of setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair = ''] = line.split(';', 1)
      const eq = pair.indexOf('=')
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
    }
    return { status: res.statusCode, headers: res.headers, body: text, json: <T>() => JSON.parse(text) as T }
  }
}

/** The path and query of an absolute or relative URL, to send it to a replica of one's choice. */
export function pathOf (location: string): string {
  const url = new URL(location, 'http://placeholder')
  return url.pathname + url.search
}

export async function register (origin: string): Promise<RegisteredClient> {
  const res = await new HttpBrowser().postJson(`${origin}/register`, {
    client_name: 'Replica Test Client',
    redirect_uris: ['http://127.0.0.1:33418/callback'],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token']
  })
  if (res.status !== 201) throw new Error(`register: ${res.status} ${res.body}`)
  return res.json<RegisteredClient>()
}

export interface PendingLogin {
  browser: HttpBrowser
  verifier: string
  flow: string
  csrf: string
}

/** GET /authorize on `origin`, then its login page: a login begun, nothing typed yet. */
export async function beginLogin (
  origin: string,
  publicUrl: string,
  client: RegisteredClient,
  browser = new HttpBrowser()
): Promise<PendingLogin> {
  const { verifier, challenge } = createPkcePair()
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: client.redirect_uris[0] as string,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'replica-state',
    resource: `${publicUrl}/mcp`
  })
  const res = await browser.get(`${origin}/authorize?${query.toString()}`)
  if (res.status !== 302) throw new Error(`authorize: ${res.status} ${res.body}`)
  const page = await browser.get(`${origin}${pathOf(res.headers.location as string)}`)
  if (page.status !== 200) throw new Error(`login page: ${page.status} ${page.body}`)
  return { browser, verifier, flow: hiddenField(page.body, 'flow'), csrf: hiddenField(page.body, 'csrf') }
}

/** POST /login (and /consent when asked) on `origin`: returns the upstream authorize URL the browser is sent to. */
export async function signIn (origin: string, login: PendingLogin): Promise<string> {
  const fields = { flow: login.flow, csrf: login.csrf }
  const res = await login.browser.postForm(`${origin}/login`, { ...fields, username: 'gateway_user', password: 'gateway_pass' })
  if (res.status !== 303) throw new Error(`login: ${res.status} ${res.body}`)
  const next = res.headers.location as string
  if (!next.startsWith('/consent')) return next
  const consent = await login.browser.postForm(`${origin}/consent`, { ...fields, decision: 'approve' })
  if (consent.status !== 303) throw new Error(`consent: ${consent.status} ${consent.body}`)
  return consent.headers.location as string
}

/** The browser at the fake GitHub, which sends it back to the gateway's callback: that callback's path. */
export async function atUpstream (upstreamAuthorizeUrl: string): Promise<string> {
  return pathOf(await visitUpstream(upstreamAuthorizeUrl))
}

/** GET /upstream/callback on `origin`: the code the client receives. */
export async function finishCallback (
  origin: string,
  login: PendingLogin,
  callbackPath: string
): Promise<{ code: string, redirect: URL }> {
  const res = await login.browser.get(`${origin}${callbackPath}`)
  if (res.status !== 302) throw new Error(`callback: ${res.status} ${res.body}`)
  const redirect = new URL(res.headers.location as string)
  const code = redirect.searchParams.get('code')
  if (code === null) throw new Error(`callback: no code in ${redirect.href}`)
  return { code, redirect }
}

export interface Tokens {
  access_token: string
  refresh_token: string
  expires_in: number
  token_type: string
  scope: string
}

export async function tokenRequest (
  origin: string,
  form: Record<string, string>,
  headers: Record<string, string> = {}
): Promise<HttpResponse> {
  return await new HttpBrowser().postForm(`${origin}/token`, form, headers)
}

export async function exchange (
  origin: string,
  client: RegisteredClient,
  code: string,
  verifier: string
): Promise<HttpResponse> {
  return await tokenRequest(origin, { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: client.client_id, redirect_uri: client.redirect_uris[0] as string })
}

export async function refresh (origin: string, client: RegisteredClient, refreshToken: string): Promise<HttpResponse> {
  return await tokenRequest(origin, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.client_id })
}

/** The whole chain on one replica: a client's fresh tokens. */
export async function loginFully (origin: string, publicUrl: string, client: RegisteredClient): Promise<Tokens> {
  const login = await beginLogin(origin, publicUrl, client)
  const callback = await atUpstream(await signIn(origin, login))
  const { code } = await finishCallback(origin, login, callback)
  const res = await exchange(origin, client, code, login.verifier)
  if (res.status !== 200) throw new Error(`token: ${res.status} ${res.body}`)
  return res.json<Tokens>()
}

/** The official MCP SDK client, connected through `origin` with a gateway access token. Closed at teardown. */
export async function mcpClient (
  t: Teardown,
  origin: string,
  accessToken: string
): Promise<{ client: Client, transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${accessToken}` } }
  })
  const client = new Client({ name: 'replica-test', version: '1.0.0' })
  await client.connect(transport)
  t.teardown(async () => { await client.close().catch(() => {}) })
  return { client, transport }
}

export const textOf = (result: unknown): string => ((result as { content?: Array<{ text?: string }> }).content?.[0]?.text ?? '')

/**
 * One raw tools/call `echo` on an existing MCP session through `origin`: the status, the echoed text
 * when it worked (JSON or one SSE event), and the body otherwise.
 */
export async function callEcho (origin: string, accessToken: string, sessionId: string | undefined, text: string): Promise<{ status: number, text?: string, body: string, headers: HttpResponse['headers'] }> {
  const res = await new HttpBrowser().postJson(`${origin}/mcp`, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text } } }, {
    authorization: `Bearer ${accessToken}`,
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
    ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId })
  })
  if (res.status !== 200) return { status: res.status, body: res.body, headers: res.headers }
  const json = res.body.trimStart().startsWith('{') ? res.body : res.body.split('\n').find((line) => line.startsWith('data: '))?.slice(6) ?? '{}'
  const message = JSON.parse(json) as { result?: unknown }
  return { status: res.status, text: textOf(message.result), body: res.body, headers: res.headers }
}

/** What a gateway process answered at each step of signInRefreshRevoke(). */
export interface Journey {
  call: number
  refresh: number
  callRefreshed: number
  revoke: number
  callRevoked: number
  refreshRevoked: number
  output: string
}

/** signInRefreshRevoke() on a store that works: every step answers, and the revoked grant is refused. */
export const JOURNEY_OK: Omit<Journey, 'output'> = {
  call: 200,
  refresh: 200,
  callRefreshed: 200,
  revoke: 200,
  callRevoked: 401,
  refreshRevoked: 400
}

/**
 * One real gateway process on `store` in front of a fake GitHub and MCP server: a sign-in, a tool call, a refresh,
 * a call with the new token, a revoke, then the revoked grant's call and refresh. Everything is stopped at teardown.
 */
export async function signInRefreshRevoke (
  t: Teardown,
  store: string,
  storePrefix: string,
  secret: string
): Promise<Journey> {
  const { startFakeGithub } = await import('./fake-github.js')
  const { startFakeMcp } = await import('./fake-mcp.js')
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
  t.teardown(() => mcp.close())
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}`
  const flags = gatewayFlags({ port, publicUrl, store, storePrefix, secret, github, upstreamRs: mcp.url })
  const gateway = await GatewayProcess.start(t, port, flags, {}, 40_000)
  const client = await register(gateway.origin)
  const first = await loginFully(gateway.origin, publicUrl, client)
  const { transport } = await mcpClient(t, gateway.origin, first.access_token)
  const session = transport.sessionId
  const call = (await callEcho(gateway.origin, first.access_token, session, 'first')).status
  const refreshed = await refresh(gateway.origin, client, first.refresh_token)
  const second = refreshed.json<Tokens>()
  const callRefreshed = (await callEcho(gateway.origin, second.access_token, session, 'refreshed')).status
  const revoke = (await new HttpBrowser().postForm(`${gateway.origin}/revoke`, { token: second.refresh_token, client_id: client.client_id })).status
  const callRevoked = (await callEcho(gateway.origin, second.access_token, session, 'revoked')).status
  const refreshRevoked = (await refresh(gateway.origin, client, second.refresh_token)).status
  return { call, refresh: refreshed.status, callRefreshed, revoke, callRevoked, refreshRevoked, output: gateway.output }
}
