import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { request } from 'undici'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey } from '../../lib/crypto.js'
import { createPkcePair } from '../../lib/pkce.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { UpstreamAuthorizationServer } from '../../lib/upstream-as/authorization-server.js'
import type { UpstreamSettings } from '../../lib/upstream-as/authorization-server.js'
import { UpstreamError } from '../../lib/upstream-as/errors.js'
import { startFakeGithub } from './fake-github.js'
import type { FakeGithub, FakeGithubOptions } from './fake-github.js'

/** The set-up shared by the tests of lib/upstream-as/: the GitHub fake, throwaway servers, and the client. */

export const REDIRECT_URI = 'https://gateway.example/upstream/callback'
export const NOW = Date.UTC(2026, 0, 1)
export const SEAL_KEY = deriveKey('an-operator-secret-of-at-least-32-chars', 'upstream-client-seal')

export interface Recorded { method: string, path: string, headers: IncomingHttpHeaders, body: string }
export interface Tiny { origin: string, requests: Recorded[] }
type TinyHandler = (req: IncomingMessage, res: ServerResponse, body: string, origin: string) => void

/** A throwaway server for the upstream variants the GitHub fake does not play. */
export async function tiny (t: Test, handler: TinyHandler): Promise<Tiny> {
  const requests: Recorded[] = []
  let origin = ''
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      handler(req, res, body, origin)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { origin, requests }
}

export function sendJson (
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {}
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value))
}

export async function github (t: Test, options?: FakeGithubOptions): Promise<FakeGithub> {
  const fake = await startFakeGithub(options)
  t.teardown(() => fake.close())
  return fake
}

export interface Made { upstream: UpstreamAuthorizationServer, store: MemoryStore, clock: ManualClock }

export function make (
  t: Test,
  settings: Partial<UpstreamSettings> & { resourceUrl: string },
  store?: MemoryStore,
  sealKeys = [SEAL_KEY]
): Made {
  const clock = new ManualClock(NOW)
  const theStore = store ?? new MemoryStore({ clock })
  if (store === undefined) t.teardown(() => theStore.close())
  const upstream = new UpstreamAuthorizationServer(
    { redirectUri: REDIRECT_URI, clientName: 'mcp-oauth-gateway', timeoutMs: 2000, ...settings },
    { store: theStore, clock, sealKeys })
  return { upstream, store: theStore, clock }
}

/** The static-client setup a GitHub deployment uses. */
export function forGithub (t: Test, fake: FakeGithub, extra: Partial<UpstreamSettings> = {}): Made {
  return make(t, {
    resourceUrl: fake.resourceUrl,
    issuerUrl: fake.issuer,
    clientId: fake.clientId,
    clientSecret: fake.clientSecret,
    ...extra
  })
}

/** RFC 8414 metadata of a tiny authorization server at `origin` that registers clients at /register. */
export function registeringAsMetadata (origin: string): Record<string, string> {
  return {
    issuer: origin,
    authorization_endpoint: `${origin}/a`,
    token_endpoint: `${origin}/t`,
    registration_endpoint: `${origin}/register`
  }
}

/** A configured client (no discovery, no registration) of a small authorization server of the test's own. */
export function forTiny (t: Test, as: Tiny, extra: Partial<UpstreamSettings> = {}): Made {
  return make(t, {
    resourceUrl: 'https://rs.example/mcp',
    authorizeEndpoint: `${as.origin}/a`,
    tokenEndpoint: `${as.origin}/t`,
    clientId: 'id',
    ...extra
  })
}

/** Plays the browser at the upstream authorize endpoint and returns what came back to the callback. */
export async function authorize (
  upstream: UpstreamAuthorizationServer,
  scopes?: string[]
): Promise<{ code: string, verifier: string, callback: URL }> {
  const pkce = createPkcePair()
  const url = await upstream.authorizeUrl(scopes === undefined
    ? { state: 'st-1', codeChallenge: pkce.challenge }
    : { state: 'st-1', codeChallenge: pkce.challenge, scopes })
  const res = await request(url)
  await res.body.dump()
  const callback = new URL(String(res.headers['location']))
  return { code: callback.searchParams.get('code') ?? '', verifier: pkce.verifier, callback }
}

export async function rejection (promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof UpstreamError) return err
    throw err
  }
  throw new Error('expected an UpstreamError')
}

export const paths = (requests: Recorded[]): string[] =>
  requests.map((r) => `${r.method} ${r.path.split('?')[0] ?? ''}`)
