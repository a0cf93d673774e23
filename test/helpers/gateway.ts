import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import gateway, { type GatewayPluginOptions } from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { createPkcePair } from '../../lib/pkce.js'
import { startFakeGithub, type FakeGithub, type FakeGithubOptions } from './fake-github.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from './redis.js'
import type { Teardown } from './teardown.js'

export const PUBLIC_URL = 'http://localhost:8002'
export const SECRET = 'test-secret-that-is-at-least-32-characters-long'

export interface TestGateway {
  app: FastifyInstance
  github: FakeGithub
  clock: ManualClock
}

/**
 * A gateway in front of a fresh fake GitHub, configured as the README's quick start configures GitHub
 * (direct endpoints, a pre-registered OAuth App), with a clock the test moves. Overrides that need the fake's
 * URLs are a function of it.
 */
export type GatewayOverrides = Partial<GatewayPluginOptions> | ((github: FakeGithub) => Partial<GatewayPluginOptions>)

export async function buildGateway (t: Teardown, given: GatewayOverrides = {}, fake: FakeGithubOptions = {}, logger: FastifyServerOptions['logger'] = false): Promise<TestGateway> {
  const github = await startFakeGithub(fake)
  t.teardown(() => github.close())
  const clock = new ManualClock(Date.now())
  const app = Fastify({ logger })
  const store = testStore()
  const overrides = typeof given === 'function' ? given(github) : given
  await app.register(gateway, gatewayOptions(github, clock, { ...store, ...overrides }))
  t.teardown(async () => {
    await app.close()
    if (store.storePrefix !== undefined) await deletePrefix(SHARED_REDIS_URL, store.storePrefix)
  })
  await app.ready()
  return { app, github, clock }
}

export interface LiveGateway {
  app: FastifyInstance
  /** http://127.0.0.1:port, which is also the gateway's publicUrl. */
  origin: string
  clock: ManualClock
}

/**
 * The gateway on a real socket whose `publicUrl` is the URL clients use. The HTTP server listens first
 * (port 0, so no port is guessed or reserved), then a Fastify instance takes it over through
 * `serverFactory`: the port is known before the gateway is registered. The store is the caller's (pass
 * testStore() in `overrides` to follow the Redis re-runs); a key prefix it names is deleted afterwards.
 */
export async function startLiveGateway (t: Teardown, github: FakeGithub, overrides: Partial<GatewayPluginOptions> = {}, logger: FastifyServerOptions['logger'] = false): Promise<LiveGateway> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clock = new ManualClock(Date.now())
  const app = Fastify({ logger, serverFactory: (handler) => server.on('request', handler) })
  t.teardown(async () => {
    // Connections first: Fastify does not close a server it did not listen itself, and open event streams
    // or the SDK's keep-alive connections would hold close() up.
    server.closeAllConnections()
    await app.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    if (overrides.storePrefix !== undefined) await deletePrefix(SHARED_REDIS_URL, overrides.storePrefix)
  })
  await app.register(gateway, gatewayOptions(github, clock, { publicUrl: origin, ...overrides }))
  await app.ready()
  return { app, origin, clock }
}

/**
 * The store under test: memory, or Redis when a file runs a suite again with
 * MCP_GATEWAY_TEST_STORE=redis (test/redis/*.test.ts), each gateway under a key prefix of its own.
 */
export function testStore (): Partial<GatewayPluginOptions> {
  if (process.env.MCP_GATEWAY_TEST_STORE !== 'redis') return {}
  return { store: SHARED_REDIS_URL, storePrefix: testPrefix(process.argv[1] ?? 'test') }
}

/** The plugin options every test starts from: the GitHub set-up of the README's quick start. */
export function gatewayOptions (
  github: FakeGithub,
  clock: ManualClock,
  overrides: Partial<GatewayPluginOptions> = {}
): GatewayPluginOptions {
  return {
    publicUrl: PUBLIC_URL,
    upstreamRs: github.resourceUrl,
    upstreamClientId: github.clientId,
    upstreamClientSecret: github.clientSecret,
    upstreamAuthorizeEndpoint: github.authorizeEndpoint,
    upstreamTokenEndpoint: github.tokenEndpoint,
    upstreamScopes: ['repo', 'read:org'],
    secret: SECRET,
    upstreamTimeout: 2000,
    clock,
    ...overrides
  }
}

export interface RegisteredClient {
  client_id: string
  client_secret?: string
  redirect_uris: string[]
  [key: string]: unknown
}

export async function registerClient (
  app: FastifyInstance,
  metadata: Record<string, unknown> = {}
): Promise<RegisteredClient> {
  const res = await app.inject({
    method: 'POST',
    url: '/register',
    payload: {
      client_name: 'Test Client',
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      ...metadata
    }
  })
  if (res.statusCode !== 201) throw new Error(`registration failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** A cookie jar over inject(): what a browser does with the gateway's cookie between screens. */
export class Browser {
  readonly cookies = new Map<string, string>()

  async get (app: FastifyInstance, url: string): Promise<LightMyRequestResponse> {
    return this.#remember(await app.inject({ method: 'GET', url, headers: this.#headers() }))
  }

  async post (app: FastifyInstance, url: string, form: Record<string, string>): Promise<LightMyRequestResponse> {
    return this.#remember(await app.inject({
      method: 'POST',
      url,
      headers: { ...this.#headers(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(form).toString()
    }))
  }

  #headers (): Record<string, string> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    return cookie === '' ? {} : { cookie }
  }

  #remember (res: LightMyRequestResponse): LightMyRequestResponse {
    for (const c of res.cookies as Array<{ name: string, value: string }>) this.cookies.set(c.name, c.value)
    return res
  }
}

/** The path (and query) of a gateway URL, for inject(). */
export function pathOf (location: string): string {
  const url = new URL(location, PUBLIC_URL)
  return url.pathname + url.search
}

export function hiddenField (html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)
  if (match?.[1] === undefined) throw new Error(`no hidden field ${name}`)
  return match[1]
}

export interface AuthorizeParams {
  redirectUri?: string
  state?: string
  challenge?: string
  resource?: string
  extra?: Record<string, string>
}

export function authorizeUrl (client: RegisteredClient, p: AuthorizeParams & { challenge: string }): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: p.redirectUri ?? client.redirect_uris[0] as string,
    code_challenge: p.challenge,
    code_challenge_method: 'S256',
    state: p.state ?? 'client-state-123',
    resource: p.resource ?? `${PUBLIC_URL}/mcp`,
    ...p.extra
  })
  return `/authorize?${query.toString()}`
}

/** Follows /authorize to the login page; returns the flow id and CSRF token the page carries. */
export async function startFlow (
  app: FastifyInstance,
  browser: Browser,
  client: RegisteredClient,
  p: AuthorizeParams & { challenge: string }
): Promise<{ flow: string, csrf: string }> {
  const res = await browser.get(app, authorizeUrl(client, p))
  if (res.statusCode !== 302) throw new Error(`authorize: ${res.statusCode} ${res.body}`)
  const login = await browser.get(app, pathOf(res.headers.location as string))
  if (login.statusCode !== 200) throw new Error(`login page: ${login.statusCode}`)
  return { flow: hiddenField(login.body, 'flow'), csrf: hiddenField(login.body, 'csrf') }
}

/** Signs in and approves: returns the 303 to the upstream authorize URL. */
export async function signInAndApprove (
  app: FastifyInstance,
  browser: Browser,
  flow: { flow: string, csrf: string },
  remember = false
): Promise<string> {
  const login = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
  if (login.statusCode !== 303) throw new Error(`login: ${login.statusCode} ${login.body}`)
  const next = login.headers.location as string
  if (!next.startsWith('/consent')) return next
  const consent = await browser.post(app, '/consent', { ...flow, decision: 'approve', ...(remember ? { remember: 'on' } : {}) })
  if (consent.statusCode !== 303) throw new Error(`consent: ${consent.statusCode} ${consent.body}`)
  return consent.headers.location as string
}

/** The browser at the fake GitHub: its authorize endpoint redirects straight back to the gateway. */
export async function visitUpstream (upstreamUrl: string): Promise<string> {
  const res = await request(upstreamUrl, { method: 'GET' })
  await res.body.dump()
  if (res.statusCode !== 302) throw new Error(`upstream authorize: ${res.statusCode}`)
  return res.headers.location as string
}

export interface CompletedFlow {
  /** The client's redirect, parsed. */
  redirect: URL
  code: string
  verifier: string
}

/** The whole two-screen chain, as a person in a browser would go through it. */
export async function authorizeFully (
  app: FastifyInstance,
  client: RegisteredClient,
  p: AuthorizeParams = {},
  browser = new Browser()
): Promise<CompletedFlow> {
  const { verifier, challenge } = createPkcePair()
  const flow = await startFlow(app, browser, client, { ...p, challenge })
  const upstream = await signInAndApprove(app, browser, flow)
  const callback = await visitUpstream(upstream)
  const res = await browser.get(app, pathOf(callback))
  if (res.statusCode !== 302) throw new Error(`callback: ${res.statusCode} ${res.body}`)
  const redirect = new URL(res.headers.location as string)
  return { redirect, code: redirect.searchParams.get('code') ?? '', verifier }
}

export async function exchangeCode (
  app: FastifyInstance,
  client: RegisteredClient,
  code: string,
  verifier: string,
  extra: Record<string, string> = {}
): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: client.client_id, redirect_uri: client.redirect_uris[0] as string, ...extra }).toString()
  })
}

export async function tokenRequest (
  app: FastifyInstance,
  form: Record<string, string>,
  headers: Record<string, string> = {}
): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams(form).toString()
  })
}
