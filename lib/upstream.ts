import { request } from 'undici'
import type { Dispatcher } from 'undici'
import type { Clock } from './clock.js'
import { hashSecret, seal, unseal } from './crypto.js'
import { parseScopes } from './scopes.js'
import type { Store } from './stores/types.js'
import { withoutTrailingSlashes } from './url.js'

export interface UpstreamSettings {
  /** The upstream MCP server URL (--upstream-rs), e.g. https://api.githubcopilot.com/mcp */
  resourceUrl: string
  /** --upstream-as: an AS issuer or base URL. Absent: found from the resource server (RFC 9728). */
  issuerUrl?: string
  clientId?: string
  clientSecret?: string
  /** Discovery is skipped only when both are given; one alone overrides the discovered value. */
  authorizeEndpoint?: string
  tokenEndpoint?: string
  /** Sent upstream. Undefined: the discovered scopes_supported (if any), else none. */
  scopes?: string[]
  /** The gateway's own /upstream/callback. */
  redirectUri: string
  /** Used when registering dynamically. */
  clientName: string
  /** Bound on every upstream HTTP call, headers and body together. */
  timeoutMs: number
  dispatcher?: Dispatcher
}

export interface UpstreamEndpoints {
  issuer?: string
  authorizationEndpoint: string
  tokenEndpoint: string
  registrationEndpoint?: string
  revocationEndpoint?: string
  scopesSupported?: string[]
}

export interface UpstreamClientCredentials {
  clientId: string
  clientSecret?: string
  authMethod: 'client_secret_post' | 'client_secret_basic' | 'none'
}

/** A dynamically registered client as stored: the secret sealed, with the record's key as associated data. */
interface StoredClient {
  clientId: string
  authMethod: UpstreamClientCredentials['authMethod']
  sealedSecret?: string
}

export interface UpstreamTokens {
  accessToken: string
  refreshToken?: string
  /** Epoch ms. Undefined means the token never expires (GitHub OAuth App tokens). */
  expiresAt?: number
  scopes: string[]
  tokenType: string
}

export type UpstreamErrorKind = 'unreachable' | 'timeout' | 'bad_response' | 'oauth_error' | 'discovery' | 'registration'

/**
 * Every failure talking to the upstream. Messages are meant for operators' logs: they name URLs
 * (without userinfo or query) and OAuth error codes, never tokens, codes or secrets.
 */
export class UpstreamError extends Error {
  readonly kind: UpstreamErrorKind
  readonly oauthError?: string
  readonly status?: number

  constructor (kind: UpstreamErrorKind, message: string, options: { oauthError?: string, status?: number, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'UpstreamError'
    this.kind = kind
    this.oauthError = options.oauthError
    this.status = options.status
  }
}

export interface UpstreamResolution {
  endpoints: UpstreamEndpoints
  client: UpstreamClientCredentials
  scopes: string[]
}

interface Resolved extends UpstreamResolution {
  /** Store key of dynamically registered credentials, so they can be dropped when the AS forgets them. */
  clientKey?: string
}

interface HttpReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

type JsonObject = Record<string, unknown>

// A hostile or broken upstream must not be able to make the gateway buffer without bound.
const MAX_BODY_BYTES = 1024 * 1024
// fetch-based MCP clients follow redirects on discovery; undici's request() does not, so do it by hand.
const MAX_REDIRECTS = 3
const CLIENT_TTL_MS = 365 * 24 * 60 * 60 * 1000
const MIN_REDACTED_LENGTH = 8
const CLIENT_KEY_PREFIX = 'upstream:client:'
const SECRET_AUTH_METHODS = new Set<string>(['client_secret_post', 'client_secret_basic'])
// A failed discovery is given to every caller for this long before anything is sent again: an upstream that
// is down or misconfigured must not turn each /readyz probe or sign-in into a burst of outbound requests.
export const DISCOVERY_RETRY_MS = 10_000

export class Upstream {
  readonly #settings: UpstreamSettings
  readonly #store: Store
  readonly #clock: Clock
  /** Seal a registered client's secret at rest; the first seals, any of them opens (secret rotation). */
  readonly #sealKeys: readonly Buffer[]
  #pending: Promise<Resolved> | undefined
  #resolved: Resolved | undefined
  /** The last failed discovery, and the clock time from which the next call tries again. */
  #failed: { error: unknown, retryAt: number } | undefined

  constructor (settings: UpstreamSettings, deps: { store: Store, clock: Clock, sealKeys: readonly Buffer[] }) {
    this.#settings = settings
    this.#store = deps.store
    this.#clock = deps.clock
    this.#sealKeys = deps.sealKeys
  }

  /** The AS host, for the consent page. Before discovery it is the best guess from the settings. */
  get displayName (): string {
    const s = this.#settings
    return hostOf(this.#resolved?.endpoints.issuer ?? this.#resolved?.endpoints.authorizationEndpoint ??
      s.issuerUrl ?? s.authorizeEndpoint ?? s.resourceUrl)
  }

  /**
   * Discovers the endpoints and the client once; concurrent callers share the attempt. A failure is kept
   * for DISCOVERY_RETRY_MS (every call in that time gets it at once), then the next call tries again.
   */
  async resolve (): Promise<UpstreamResolution> {
    const { endpoints, client, scopes } = await this.#resolve()
    // A copy: a caller editing the result must not change what every later flow uses.
    return structuredClone({ endpoints, client, scopes })
  }

  async authorizeUrl (p: { state: string, codeChallenge: string, scopes?: string[] }): Promise<string> {
    const { endpoints, client, scopes } = await this.#resolve()
    const url = new URL(endpoints.authorizationEndpoint)
    const query = url.searchParams
    query.set('response_type', 'code')
    query.set('client_id', client.clientId)
    query.set('redirect_uri', this.#settings.redirectUri)
    query.set('state', p.state)
    query.set('code_challenge', p.codeChallenge)
    query.set('code_challenge_method', 'S256')
    const scope = parseScopes(p.scopes ?? scopes).join(' ')
    if (scope !== '') query.set('scope', scope)
    return url.href
  }

  async exchangeCode (p: { code: string, codeVerifier: string }): Promise<UpstreamTokens> {
    return this.#tokenRequest({
      grant_type: 'authorization_code',
      code: p.code,
      redirect_uri: this.#settings.redirectUri,
      code_verifier: p.codeVerifier
    })
  }

  async refresh (refreshToken: string): Promise<UpstreamTokens> {
    const tokens = await this.#tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken })
    // RFC 6749 §6: when the AS does not rotate, the old refresh token stays valid.
    tokens.refreshToken ??= refreshToken
    return tokens
  }

  #resolve (): Promise<Resolved> {
    if (this.#pending !== undefined) return this.#pending
    const failed = this.#failed
    if (failed !== undefined && this.#clock.now() < failed.retryAt) return Promise.reject(failed.error)
    const pending = this.#discoverAndRegister()
    this.#pending = pending
    pending.then((resolved) => {
      this.#resolved = resolved
      this.#failed = undefined
    }, (error: unknown) => {
      if (this.#pending !== pending) return
      this.#pending = undefined
      this.#failed = { error, retryAt: this.#clock.now() + DISCOVERY_RETRY_MS }
    })
    return pending
  }

  async #discoverAndRegister (): Promise<Resolved> {
    const { endpoints, resourceScopes } = await this.#discover()
    const { client, clientKey } = await this.#client(endpoints)
    const s = this.#settings
    const scopes = s.scopes !== undefined
      ? parseScopes(s.scopes)
      // The MCP scope-selection rule: what the resource says it needs, else what the AS offers.
      : resourceScopes ?? endpoints.scopesSupported ?? []
    return clientKey === undefined ? { endpoints, client, scopes } : { endpoints, client, scopes, clientKey }
  }

  async #discover (): Promise<{ endpoints: UpstreamEndpoints, resourceScopes?: string[] }> {
    const s = this.#settings
    if (s.authorizeEndpoint !== undefined && s.tokenEndpoint !== undefined) {
      const endpoints: UpstreamEndpoints = {
        authorizationEndpoint: configuredUrl(s.authorizeEndpoint, 'upstream authorize endpoint'),
        tokenEndpoint: configuredUrl(s.tokenEndpoint, 'upstream token endpoint')
      }
      if (s.issuerUrl !== undefined) endpoints.issuer = s.issuerUrl
      return { endpoints }
    }

    let issuer = s.issuerUrl
    let resourceScopes: string[] | undefined
    if (issuer === undefined) {
      ({ issuer, resourceScopes } = await this.#findIssuer())
    }
    const metadata = await this.#authorizationServerMetadata(issuer)
    if (s.authorizeEndpoint !== undefined) metadata.authorizationEndpoint = configuredUrl(s.authorizeEndpoint, 'upstream authorize endpoint')
    if (s.tokenEndpoint !== undefined) metadata.tokenEndpoint = configuredUrl(s.tokenEndpoint, 'upstream token endpoint')
    return resourceScopes === undefined ? { endpoints: metadata } : { endpoints: metadata, resourceScopes }
  }

  /** RFC 9728: the 401 challenge's resource_metadata first, then the path-inserted and root well-knowns. */
  async #findIssuer (): Promise<{ issuer: string, resourceScopes?: string[] }> {
    const resource = configuredUrl(this.#settings.resourceUrl, 'upstream resource URL')
    const resourceUrl = new URL(resource)
    const tried: string[] = []
    const candidates: string[] = []

    // Headers only: a resource server that needs no auth may answer GET with an endless SSE stream.
    const probe = await this.#send(resource, { method: 'GET', headers: { accept: 'application/json, text/event-stream' }, readBody: false }, 'upstream MCP server')
    // Read whatever the status: some servers challenge with 403 or 400 as well.
    const pointer = resourceMetadataFrom(probe.headers['www-authenticate'])
    tried.push(`${describeUrl(resourceUrl)} (HTTP ${probe.status}${pointer === undefined ? ', no resource_metadata' : ''})`)
    if (pointer !== undefined) candidates.push(pointer)
    candidates.push(...wellKnownUrls(resourceUrl, 'oauth-protected-resource', false))

    for (const url of new Set(candidates)) {
      const doc = await this.#getJson(url, tried)
      if (doc === undefined) continue
      // The document's `resource` is deliberately not compared with ours: GitHub's differs by a
      // trailing slash, and its enterprise host points at the api.githubcopilot.com metadata.
      const servers = doc['authorization_servers']
      const first: unknown = Array.isArray(servers) ? servers[0] : undefined
      if (typeof first !== 'string' || !isHttpUrl(first)) {
        tried.push(`${describe(url)} (no authorization_servers)`)
        continue
      }
      const scopes = doc['scopes_supported']
      return Array.isArray(scopes) ? { issuer: first, resourceScopes: parseScopes(scopes) } : { issuer: first }
    }
    throw new UpstreamError('discovery',
      `could not find the authorization server of ${describeUrl(resourceUrl)}; tried ${tried.join(', ')}. ` +
      'Pass --upstream-as, or both upstream endpoints')
  }

  /** RFC 8414 and OIDC Discovery, in the order the MCP spec gives. */
  async #authorizationServerMetadata (issuer: string): Promise<UpstreamEndpoints> {
    const issuerUrl = new URL(configuredUrl(issuer, 'upstream issuer'))
    const tried: string[] = []
    for (const url of wellKnownUrls(issuerUrl, 'oauth-authorization-server', true)) {
      const doc = await this.#getJson(url, tried)
      if (doc === undefined) continue
      const authorizationEndpoint = httpUrlField(doc, 'authorization_endpoint')
      const tokenEndpoint = httpUrlField(doc, 'token_endpoint')
      if (authorizationEndpoint === undefined || tokenEndpoint === undefined) {
        tried.push(`${describe(url)} (no authorization_endpoint or token_endpoint)`)
        continue
      }
      const named = doc['issuer']
      // RFC 8414 §3.3: metadata naming another issuer is discarded (mix-up defence).
      if (typeof named === 'string' && withoutTrailingSlashes(named) !== withoutTrailingSlashes(issuer)) {
        tried.push(`${describe(url)} (names issuer ${describe(named)})`)
        continue
      }
      const endpoints: UpstreamEndpoints = { issuer: typeof named === 'string' ? named : issuer, authorizationEndpoint, tokenEndpoint }
      const registrationEndpoint = httpUrlField(doc, 'registration_endpoint')
      if (registrationEndpoint !== undefined) endpoints.registrationEndpoint = registrationEndpoint
      const revocationEndpoint = httpUrlField(doc, 'revocation_endpoint')
      if (revocationEndpoint !== undefined) endpoints.revocationEndpoint = revocationEndpoint
      if (Array.isArray(doc['scopes_supported'])) endpoints.scopesSupported = parseScopes(doc['scopes_supported'])
      return endpoints
    }
    throw new UpstreamError('discovery',
      `no authorization server metadata for issuer ${describeUrl(issuerUrl)}; tried ${tried.join(', ')}. ` +
      'Pass both upstream endpoints to skip discovery')
  }

  async #client (endpoints: UpstreamEndpoints): Promise<{ client: UpstreamClientCredentials, clientKey?: string }> {
    const s = this.#settings
    if (s.clientId !== undefined) {
      return {
        client: s.clientSecret === undefined
          ? { clientId: s.clientId, authMethod: 'none' }
          : { clientId: s.clientId, clientSecret: s.clientSecret, authMethod: 'client_secret_post' }
      }
    }
    const registrationEndpoint = endpoints.registrationEndpoint
    if (registrationEndpoint === undefined) {
      throw new UpstreamError('registration',
        `the upstream authorization server ${hostOf(endpoints.issuer ?? endpoints.authorizationEndpoint)} offers no dynamic client registration ` +
        '(GitHub has none): register an OAuth app there and pass --upstream-client-id and --upstream-client-secret')
    }
    const clientKey = CLIENT_KEY_PREFIX + hashSecret(registrationEndpoint + ' ' + s.redirectUri)
    const stored = this.#openClient(clientKey, await this.#store.get<StoredClient>(clientKey))
    if (stored !== undefined) return { client: stored, clientKey }

    const reply = await this.#send(registrationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        client_name: s.clientName,
        redirect_uris: [s.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post'
      })
    }, 'upstream registration endpoint')
    const doc = parseJsonObject(reply.body)
    if (reply.status !== 200 && reply.status !== 201) {
      const code = typeof doc?.['error'] === 'string' ? printable(doc['error'], 64) : undefined
      throw new UpstreamError('registration',
        `dynamic registration at ${describe(registrationEndpoint)} failed: HTTP ${reply.status}${code === undefined ? '' : ` (${code})`}`,
        code === undefined ? { status: reply.status } : { status: reply.status, oauthError: code })
    }
    const clientId = doc?.['client_id']
    if (typeof clientId !== 'string' || clientId === '') {
      throw new UpstreamError('registration', `dynamic registration at ${describe(registrationEndpoint)} returned no client_id`, { status: reply.status })
    }
    const secret = doc?.['client_secret']
    const client: UpstreamClientCredentials = typeof secret === 'string' && secret !== ''
      ? { clientId, clientSecret: secret, authMethod: secretAuthMethod(doc?.['token_endpoint_auth_method']) }
      : { clientId, authMethod: 'none' }
    // Stored so that restarts and other instances reuse the registration; the secret sealed, as every secret at rest.
    const expiresAt = doc?.['client_secret_expires_at']
    const ttl = typeof expiresAt === 'number' && expiresAt > 0
      ? Math.min(CLIENT_TTL_MS, expiresAt * 1000 - this.#clock.now())
      : CLIENT_TTL_MS
    if (ttl > 0) await this.#store.set(clientKey, this.#sealClient(clientKey, client), ttl)
    return { client, clientKey }
  }

  #sealClient (clientKey: string, client: UpstreamClientCredentials): StoredClient {
    const { clientId, clientSecret, authMethod } = client
    if (clientSecret === undefined) return { clientId, authMethod }
    return { clientId, authMethod, sealedSecret: seal(this.#sealKeys[0] as Buffer, clientSecret, clientKey) }
  }

  /**
   * Undefined, so that the gateway registers again, when the record is absent, when no configured secret
   * opens it any more, or when it is a secret-bearing record without a sealed secret (builds before sealing
   * kept it in the clear: registering again overwrites it).
   */
  #openClient (clientKey: string, stored: StoredClient | undefined): UpstreamClientCredentials | undefined {
    if (stored === undefined) return undefined
    const { clientId, authMethod, sealedSecret } = stored
    if (authMethod === 'none') return { clientId, authMethod }
    if (sealedSecret === undefined) return undefined
    try {
      return { clientId, clientSecret: unseal(this.#sealKeys, sealedSecret, clientKey), authMethod }
    } catch {
      return undefined
    }
  }

  async #tokenRequest (params: Record<string, string>): Promise<UpstreamTokens> {
    const resolved = await this.#resolve()
    const { endpoints, client } = resolved
    const form = new URLSearchParams(params)
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      // GitHub answers form-encoded unless asked for JSON.
      accept: 'application/json'
    }
    const secret = client.authMethod === 'none' ? undefined : client.clientSecret
    if (secret !== undefined && client.authMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: each part is form-encoded before joining.
      headers['authorization'] = `Basic ${Buffer.from(`${formEncode(client.clientId)}:${formEncode(secret)}`).toString('base64')}`
    } else {
      form.set('client_id', client.clientId)
      if (secret !== undefined) form.set('client_secret', secret)
    }
    const reply = await this.#send(endpoints.tokenEndpoint, { method: 'POST', headers, body: form.toString() }, 'upstream token endpoint')
    try {
      return parseTokenResponse(reply.status, headerValue(reply.headers['content-type']), reply.body, this.#clock.now())
    } catch (caught) {
      const err = redacted(caught as UpstreamError, [params['code'], params['code_verifier'], params['refresh_token'], client.clientSecret])
      if (err.oauthError === 'invalid_client' && resolved.clientKey !== undefined) {
        // The AS forgot our registration (its storage was reset): register again on the next flow.
        await this.#store.delete(resolved.clientKey)
        if (this.#resolved === resolved) {
          this.#pending = undefined
          this.#resolved = undefined
        }
      }
      throw err
    }
  }

  /** GETs a JSON object, following a few redirects. Undefined (with the reason in `tried`) when there is none. */
  async #getJson (url: string, tried: string[]): Promise<JsonObject | undefined> {
    let current = url
    for (let hops = 0; hops <= MAX_REDIRECTS; hops++) {
      const reply = await this.#send(current, { method: 'GET', headers: { accept: 'application/json' } }, 'upstream metadata')
      const location = headerValue(reply.headers['location'])
      if (reply.status >= 300 && reply.status < 400 && location !== undefined) {
        const next = URL.canParse(location, current) ? new URL(location, current).href : undefined
        if (next === undefined || !isHttpUrl(next)) {
          tried.push(`${describe(url)} (bad redirect)`)
          return undefined
        }
        current = next
        continue
      }
      if (reply.status < 200 || reply.status > 299) {
        tried.push(`${describe(url)} (HTTP ${reply.status})`)
        return undefined
      }
      // Parsed whatever the content-type: GitHub has sent `application/json, application/json`.
      const doc = parseJsonObject(reply.body)
      if (doc === undefined) tried.push(`${describe(url)} (not a JSON object)`)
      return doc
    }
    tried.push(`${describe(url)} (too many redirects)`)
    return undefined
  }

  async #send (url: string, init: { method: 'GET' | 'POST', headers: Record<string, string>, body?: string, readBody?: boolean }, what: string): Promise<HttpReply> {
    const timeout = this.#settings.timeoutMs
    const where = `${what} ${describe(url)}`
    let response: Dispatcher.ResponseData
    try {
      response = await request(url, {
        method: init.method,
        headers: init.headers,
        body: init.body ?? null,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
        ...(this.#settings.dispatcher === undefined ? {} : { dispatcher: this.#settings.dispatcher })
      })
    } catch (err) {
      throw networkError(err, where, timeout)
    }
    const reply = { status: response.statusCode, headers: response.headers }
    if (init.readBody === false) {
      discard(response.body)
      return { ...reply, body: '' }
    }
    try {
      return { ...reply, body: await readCapped(response.body, where) }
    } catch (err) {
      throw err instanceof UpstreamError ? err : networkError(err, where, timeout)
    }
  }
}

/**
 * Reads a token endpoint reply. JSON or form-encoded, whatever the content-type says, and an `error`
 * field is a failure whatever the status (GitHub answers errors with HTTP 200).
 */
export function parseTokenResponse (status: number, contentType: string | undefined, body: string, now: number): UpstreamTokens {
  const fields = parseLenient(body)
  if (fields === undefined) {
    throw new UpstreamError('bad_response',
      `upstream token endpoint answered HTTP ${status} with an unreadable body (${printable(contentType ?? 'no content-type', 100)})`,
      { status })
  }
  const error = fields['error']
  if (error !== undefined && error !== null && error !== '') {
    const code = typeof error === 'string' ? printable(error, 64) : 'unknown_error'
    const description = typeof fields['error_description'] === 'string' ? printable(fields['error_description'], 200) : ''
    throw new UpstreamError('oauth_error',
      `upstream token endpoint answered error ${code} (HTTP ${status})${description === '' ? '' : `: ${description}`}`,
      { oauthError: code, status })
  }
  if (status < 200 || status > 299) {
    throw new UpstreamError('bad_response', `upstream token endpoint answered HTTP ${status} without an OAuth error`, { status })
  }
  const accessToken = fields['access_token']
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new UpstreamError('bad_response', 'upstream token endpoint answered without an access_token', { status })
  }
  const tokens: UpstreamTokens = {
    accessToken,
    scopes: parseScopes(fields['scope']),
    tokenType: typeof fields['token_type'] === 'string' && fields['token_type'] !== '' ? fields['token_type'] : 'bearer'
  }
  const refreshToken = fields['refresh_token']
  if (typeof refreshToken === 'string' && refreshToken !== '') tokens.refreshToken = refreshToken
  const expiresAt = expiryOf(fields['expires_in'], now)
  if (expiresAt !== undefined) tokens.expiresAt = expiresAt
  return tokens
}

/**
 * A number or a numeric string ("28800": GitHub's own example). Zero or negative means already
 * expired (never "no expiry"); anything else unreadable counts as absent.
 */
function expiryOf (value: unknown, now: number): number | undefined {
  let seconds: number | undefined
  if (typeof value === 'number') seconds = value
  else if (typeof value === 'string' && /^\s*-?\d+(?:\.\d+)?\s*$/.test(value)) seconds = Number(value)
  if (seconds === undefined || !Number.isFinite(seconds)) return undefined
  return seconds <= 0 ? now : now + Math.floor(seconds * 1000)
}

function parseLenient (body: string): JsonObject | undefined {
  const text = body.trim()
  if (text.startsWith('{')) return parseJsonObject(text)
  // Empty, HTML or XML: not a form either.
  if (text === '' || text.startsWith('<')) return undefined
  return Object.fromEntries(new URLSearchParams(text))
}

function parseJsonObject (text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as JsonObject : undefined
  } catch {
    return undefined
  }
}

async function readCapped (body: Dispatcher.ResponseData['body'], where: string): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > MAX_BODY_BYTES) {
      discard(body)
      throw new UpstreamError('bad_response', `${where} sent a reply larger than ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * An upstream that echoes what we sent (in error_description, even in error) must not put it in our
 * logs. Values too short to be real credentials are left alone: they would shred ordinary words.
 */
function redacted (err: UpstreamError, secrets: Array<string | undefined>): UpstreamError {
  const scrub = (text: string): string => secrets.reduce<string>(
    (clean, secret) => secret === undefined || secret.length < MIN_REDACTED_LENGTH ? clean : clean.split(secret).join('[redacted]'), text)
  const message = scrub(err.message)
  if (message === err.message) return err
  // No `cause`: it would carry the unredacted message.
  return new UpstreamError(err.kind, message, { status: err.status, oauthError: err.oauthError === undefined ? undefined : scrub(err.oauthError) })
}

/** Destroying an undici body emits an abort error: without a listener it would crash the process. */
function discard (body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {})
  body.destroy()
}

function networkError (err: unknown, where: string, timeoutMs: number): UpstreamError {
  const { name, code } = Object(err) as { name?: unknown, code?: unknown }
  // The only signal is our own AbortSignal.timeout, so an abort is a timeout too.
  const timedOut = name === 'TimeoutError' || name === 'AbortError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
  if (timedOut) return new UpstreamError('timeout', `${where} did not answer within ${timeoutMs} ms`, { cause: err })
  const reason = typeof code === 'string' ? code : typeof name === 'string' ? name : 'error'
  return new UpstreamError('unreachable', `${where} is unreachable (${reason})`, { cause: err })
}

/**
 * RFC 9728 §3.1 / RFC 8414 §3.1 path insertion, then the fallbacks. For an AS with a path the MCP
 * order adds OIDC's path-appended form, which is the only one OIDC Discovery itself defines.
 */
function wellKnownUrls (base: URL, suffix: string, authorizationServer: boolean): string[] {
  // A trailing slash would give `…/mcp/` variants some servers do not serve (MCP SDK behaviour).
  const path = withoutTrailingSlashes(base.pathname)
  const origin = base.origin
  if (!authorizationServer) {
    const root = `${origin}/.well-known/${suffix}`
    return path === '' ? [root] : [root + path, root]
  }
  if (path === '') return [`${origin}/.well-known/${suffix}`, `${origin}/.well-known/openid-configuration`]
  return [
    `${origin}/.well-known/${suffix}${path}`,
    `${origin}/.well-known/openid-configuration${path}`,
    `${origin}${path}/.well-known/openid-configuration`
  ]
}

/** The resource_metadata auth-param of a Bearer challenge (quoted or token form). */
function resourceMetadataFrom (header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header
  const match = value === undefined ? null : /(?:^|[\s,])resource_metadata\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/i.exec(value)
  if (match === null) return undefined
  const url = match[1] === undefined ? match[2] : match[1].replace(/\\(.)/g, '$1')
  return url !== undefined && isHttpUrl(url) ? url : undefined
}

function configuredUrl (value: string, what: string): string {
  if (!isHttpUrl(value)) throw new UpstreamError('discovery', `${what} is not an http(s) URL`)
  return value
}

function httpUrlField (doc: JsonObject, field: string): string | undefined {
  const value = doc[field]
  return typeof value === 'string' && isHttpUrl(value) ? value : undefined
}

function isHttpUrl (value: string): boolean {
  if (!URL.canParse(value)) return false
  const protocol = new URL(value).protocol
  return protocol === 'https:' || protocol === 'http:'
}

/** The AS may replace the method we asked for (RFC 7591 §3.2.1); with a secret, post is our default. */
function secretAuthMethod (value: unknown): 'client_secret_post' | 'client_secret_basic' {
  return typeof value === 'string' && SECRET_AUTH_METHODS.has(value) ? value as 'client_secret_basic' : 'client_secret_post'
}

function headerValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

function hostOf (url: string): string {
  return URL.canParse(url) ? new URL(url).host : printable(url, 100)
}

function formEncode (value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

/** For messages: origin and path only, so userinfo or a query never reaches a log. */
function describe (url: string): string {
  return URL.canParse(url) ? describeUrl(new URL(url)) : printable(url, 100)
}

function describeUrl (url: URL): string {
  return url.origin + url.pathname
}

/** Upstream text in our messages: printable ASCII, bounded, so it cannot forge log lines. */
function printable (text: string, max: number): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > max ? clean.slice(0, max) + '…' : clean
}
