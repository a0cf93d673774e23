import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomToken } from '../../lib/crypto.js'
import { verifyS256 } from '../../lib/pkce.js'

export interface FakeGithubOptions {
  /** 'oauth-app': gho_ tokens that never expire, no refresh. 'expiring': ghu_ + rotating ghr_ (GitHub App style). */
  mode?: 'oauth-app' | 'expiring'
  /** Seconds, sent as a string like GitHub does. Default 28800 (8 h). */
  expiresIn?: number
  /** Offer RFC 7591 registration (real GitHub does not). */
  dcr?: boolean
  clientId?: string
  clientSecret?: string
  /** Serves /mcp for a valid bearer; default answers 200 {"ok":true}. */
  mcpHandler?: (req: IncomingMessage, res: ServerResponse, token: string | undefined) => void
}

export interface FakeGithub {
  origin: string
  /** origin + '/login/oauth' */
  issuer: string
  /** origin + '/mcp' */
  resourceUrl: string
  authorizeEndpoint: string
  tokenEndpoint: string
  clientId: string
  clientSecret: string
  /** Every request received, in order; `path` includes the query string. */
  requests: Array<{ method: string, path: string, headers: IncomingHttpHeaders, body: string }>
  /** What the next authorize does. */
  decision: 'approve' | 'deny'
  /** Failure injected at the token endpoint, until set back to null. */
  tokenFailure: null | 'http500' | 'error200' | 'hang'
  /** How long the token endpoint takes to answer, ms (0: at once): a slow GitHub widens refresh races. */
  tokenDelayMs: number
  /**
   * Who signs in at the next authorize: what GET /user and /user/orgs answer for the tokens issued from then
   * on. Default octocat (id 583231), a member of octo-org.
   */
  user: FakeGithubUser
  /** Access tokens issued for a code (sign-ins), refreshes not counted. */
  tokensIssued: number
  isValidAccessToken (token: string): boolean
  /** As if the user revoked the app: every access and refresh token stops working. */
  revokeAll (): void
  close (): Promise<void>
}

/** GitHub's classic OAuth App scopes, a few of them. */
const SCOPES = ['repo', 'read:org', 'gist', 'notifications', 'user', 'user:email']
const CODE_TTL_MS = 10 * 60 * 1000
const REFRESH_TOKEN_EXPIRES_IN = 15897600
/**
 * GitHub keeps at most 10 tokens per user, app and scope set: issuing an 11th silently revokes the oldest
 * (docs.github.com, "Creating an OAuth app": token limits).
 */
const TOKENS_PER_USER_APP_AND_SCOPES = 10

interface CodeRecord {
  clientId: string
  scope: string[]
  challenge: string | undefined
  redirectUri: string
  expiresAt: number
}

export interface FakeGithubUser {
  login: string
  id: number
  orgs: string[]
}

interface AccessRecord {
  expiresAt: number | undefined
  refreshToken: string | undefined
  user: FakeGithubUser
}

interface RefreshRecord {
  clientId: string
  scope: string[]
  accessToken: string
  user: FakeGithubUser
}

/**
 * A GitHub-like authorization server plus a minimal MCP resource server, on 127.0.0.1. It keeps
 * GitHub's quirks that real clients trip over: token errors with HTTP 200, form-encoded replies
 * unless JSON is asked for, comma-separated scopes, `expires_in` as a string, rotating refresh
 * tokens, the path-inserted AS metadata and the duplicated JSON content-type on the PRM.
 */
export async function startFakeGithub (options: FakeGithubOptions = {}): Promise<FakeGithub> {
  const mode = options.mode ?? 'oauth-app'
  const expiresIn = options.expiresIn ?? 28800
  const clients = new Map<string, { secret: string, redirectUris: string[] }>()
  const codes = new Map<string, CodeRecord>()
  const accessTokens = new Map<string, AccessRecord>()
  const refreshTokens = new Map<string, RefreshRecord>()
  const hanging = new Set<ServerResponse>()

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      fake.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      try {
        route(req, res, body)
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const issuer = `${origin}/login/oauth`
  const resourceUrl = `${origin}/mcp`
  const prmUrl = `${origin}/.well-known/oauth-protected-resource/mcp`

  const fake: FakeGithub = {
    origin,
    issuer,
    resourceUrl,
    authorizeEndpoint: `${issuer}/authorize`,
    tokenEndpoint: `${issuer}/access_token`,
    clientId: options.clientId ?? 'Iv1.fakegithubclient',
    clientSecret: options.clientSecret ?? 'fake-github-client-secret-0123456789',
    requests: [],
    decision: 'approve',
    tokenFailure: null,
    tokenDelayMs: 0,
    tokensIssued: 0,
    user: { login: 'octocat', id: 583231, orgs: ['octo-org'] },
    isValidAccessToken: (token) => {
      const record = accessTokens.get(token)
      return record !== undefined && (record.expiresAt === undefined || record.expiresAt > Date.now())
    },
    revokeAll: () => {
      accessTokens.clear()
      refreshTokens.clear()
    },
    close: async () => {
      for (const res of hanging) res.destroy()
      hanging.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  clients.set(fake.clientId, { secret: fake.clientSecret, redirectUris: [] })

  const json = (res: ServerResponse, status: number, value: unknown, contentType = 'application/json; charset=utf-8'): void => {
    res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' }).end(JSON.stringify(value))
  }

  /** GitHub's token endpoint reply: JSON only when asked for, form-encoded otherwise. */
  const tokenReply = (req: IncomingMessage, res: ServerResponse, fields: Record<string, string>): void => {
    if ((req.headers.accept ?? '').includes('application/json')) {
      json(res, 200, fields)
    } else {
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' })
        .end(new URLSearchParams(fields).toString())
    }
  }

  const tokenError = (req: IncomingMessage, res: ServerResponse, error: string, description: string): void => {
    // GitHub answers token errors with HTTP 200.
    tokenReply(req, res, { error, error_description: description, error_uri: 'https://docs.github.com/apps/troubleshooting' })
  }

  /** Live access tokens of each user, app and scope set, oldest first. */
  const tokenSets = new Map<string, string[]>()
  /** Keeps GitHub's limit: the oldest live token of the set goes, with its refresh token. */
  const limitTokens = (clientId: string, user: FakeGithubUser, scope: string[], accessToken: string): void => {
    const set = `${user.id} ${clientId} ${[...scope].sort().join(',')}`
    const live = (tokenSets.get(set) ?? []).filter((token) => accessTokens.has(token))
    live.push(accessToken)
    while (live.length > TOKENS_PER_USER_APP_AND_SCOPES) {
      const oldest = live.shift() as string
      const refreshToken = accessTokens.get(oldest)?.refreshToken
      accessTokens.delete(oldest)
      if (refreshToken !== undefined) refreshTokens.delete(refreshToken)
    }
    tokenSets.set(set, live)
  }

  const issue = (
    req: IncomingMessage,
    res: ServerResponse,
    clientId: string,
    scope: string[],
    user: FakeGithubUser
  ): void => {
    const scopeText = scope.join(',')
    if (mode === 'oauth-app') {
      const accessToken = randomToken('gho_')
      accessTokens.set(accessToken, { expiresAt: undefined, refreshToken: undefined, user })
      limitTokens(clientId, user, scope, accessToken)
      tokenReply(req, res, { access_token: accessToken, token_type: 'bearer', scope: scopeText })
      return
    }
    const accessToken = randomToken('ghu_')
    const refreshToken = randomToken('ghr_')
    accessTokens.set(accessToken, { expiresAt: Date.now() + expiresIn * 1000, refreshToken, user })
    refreshTokens.set(refreshToken, { clientId, scope, accessToken, user })
    limitTokens(clientId, user, scope, accessToken)
    tokenReply(req, res, {
      access_token: accessToken,
      expires_in: String(expiresIn),
      refresh_token: refreshToken,
      refresh_token_expires_in: String(REFRESH_TOKEN_EXPIRES_IN),
      token_type: 'bearer',
      scope: scopeText
    })
  }

  const authorize = (res: ServerResponse, query: URLSearchParams): void => {
    const clientId = query.get('client_id') ?? ''
    const client = clients.get(clientId)
    if (client === undefined) {
      // What GitHub shows for an unknown client_id: its 404 page, no redirect.
      res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>')
      return
    }
    const redirectUri = query.get('redirect_uri') ?? client.redirectUris[0]
    if (redirectUri === undefined || (client.redirectUris.length > 0 && !client.redirectUris.includes(redirectUri))) {
      res.writeHead(400, { 'content-type': 'text/html' }).end('<html><body>The redirect_uri is not associated with this application.</body></html>')
      return
    }
    const target = new URL(redirectUri)
    const state = query.get('state')
    const challenge = query.get('code_challenge') ?? undefined
    const method = query.get('code_challenge_method') ?? 'plain'
    if (challenge !== undefined && method !== 'S256') {
      target.searchParams.set('error', 'invalid_request')
      target.searchParams.set('error_description', 'code_challenge_method must be S256')
    } else if (fake.decision === 'deny') {
      target.searchParams.set('error', 'access_denied')
      target.searchParams.set('error_description', 'The user has denied your application access.')
    } else {
      const code = randomToken().slice(0, 20)
      codes.set(code, {
        clientId,
        scope: (query.get('scope') ?? '').split(/[\s,]+/).filter((s) => s !== ''),
        challenge,
        redirectUri,
        expiresAt: Date.now() + CODE_TTL_MS
      })
      target.searchParams.set('code', code)
    }
    if (state !== null) target.searchParams.set('state', state)
    res.writeHead(302, { location: target.href }).end()
  }

  const token = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    if (fake.tokenFailure === 'hang') {
      hanging.add(res)
      return
    }
    if (fake.tokenFailure === 'http500') {
      res.writeHead(500, { 'content-type': 'text/html' }).end('<html><body>Internal Server Error</body></html>')
      return
    }
    if (fake.tokenFailure === 'error200') {
      tokenError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired.')
      return
    }
    const params = parseBody(req, body)
    let clientId = params.get('client_id') ?? ''
    let clientSecret = params.get('client_secret') ?? ''
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '')
    if (basic?.[1] !== undefined) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
      clientSecret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
    }
    const client = clients.get(clientId)
    if (client === undefined || client.secret !== clientSecret) {
      tokenError(req, res, 'incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.')
      return
    }
    const grantType = params.get('grant_type') ?? 'authorization_code'
    if (grantType === 'refresh_token') {
      const refreshToken = params.get('refresh_token') ?? ''
      const record = refreshTokens.get(refreshToken)
      if (record === undefined || record.clientId !== clientId) {
        tokenError(req, res, 'bad_refresh_token', 'The refresh token passed is incorrect or expired.')
        return
      }
      // Rotation: the old refresh token and the access token it came with stop working.
      refreshTokens.delete(refreshToken)
      accessTokens.delete(record.accessToken)
      issue(req, res, clientId, record.scope, record.user)
      return
    }
    if (grantType !== 'authorization_code') {
      tokenError(req, res, 'unsupported_grant_type', 'The grant type is not supported.')
      return
    }
    const code = params.get('code') ?? ''
    const record = codes.get(code)
    if (record === undefined || record.expiresAt <= Date.now() || record.clientId !== clientId) {
      tokenError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired.')
      return
    }
    const redirectUri = params.get('redirect_uri')
    if (redirectUri !== null && redirectUri !== record.redirectUri) {
      tokenError(req, res, 'redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.')
      return
    }
    const verifier = params.get('code_verifier')
    const pkceOk = record.challenge === undefined
      ? verifier === null
      : verifier !== null && verifyS256(verifier, record.challenge)
    if (!pkceOk) {
      tokenError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired.')
      return
    }
    codes.delete(code)
    fake.tokensIssued++
    issue(req, res, clientId, record.scope, fake.user)
  }

  const register = (res: ServerResponse, body: string): void => {
    let metadata: Record<string, unknown>
    try {
      metadata = JSON.parse(body) as Record<string, unknown>
    } catch {
      json(res, 400, { error: 'invalid_client_metadata', error_description: 'body is not JSON' })
      return
    }
    const redirectUris = metadata['redirect_uris']
    if (!Array.isArray(redirectUris) || redirectUris.length === 0 || !redirectUris.every((u) => typeof u === 'string' && URL.canParse(u))) {
      json(res, 400, { error: 'invalid_redirect_uri', error_description: 'redirect_uris is required' })
      return
    }
    const clientId = randomToken('Ov23').slice(0, 24)
    const clientSecret = randomToken()
    clients.set(clientId, { secret: clientSecret, redirectUris: redirectUris as string[] })
    json(res, 201, {
      ...metadata,
      client_id: clientId,
      client_secret: clientSecret,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      client_secret_expires_at: 0,
      token_endpoint_auth_method: 'client_secret_post'
    })
  }

  /** GitHub's REST API: GET /user and GET /user/orgs for a valid token, and 403 without a User-Agent. */
  const rest = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    if (req.headers['user-agent'] === undefined) {
      json(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header' })
      return
    }
    const bearer = /^(?:Bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    const record = bearer === undefined ? undefined : accessTokens.get(bearer)
    if (bearer === undefined || record === undefined || !fake.isValidAccessToken(bearer)) {
      json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' })
      return
    }
    const { login, id, orgs } = record.user
    if (path === '/user') json(res, 200, { login, id, node_id: `U_${id}`, type: 'User', name: null })
    else json(res, 200, orgs.map((org, i) => ({ login: org, id: 1000 + i })))
  }

  /** GitHub's DELETE /applications/{client_id}/token: the app's own Basic credentials, the token in JSON. */
  const revokeToken = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const expected = `Basic ${Buffer.from(`${fake.clientId}:${fake.clientSecret}`).toString('base64')}`
    if (req.headers.authorization !== expected) {
      json(res, 404, { message: 'Not Found' })
      return
    }
    const token = (JSON.parse(body) as { access_token?: unknown }).access_token
    if (typeof token !== 'string' || !accessTokens.delete(token)) {
      json(res, 422, { message: 'Validation Failed' })
      return
    }
    res.writeHead(204).end()
  }

  const mcp = (req: IncomingMessage, res: ServerResponse): void => {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    if (bearer === undefined || !fake.isValidAccessToken(bearer)) {
      const challenge = bearer === undefined
        ? 'Bearer error="invalid_request", error_description="No access token was provided in this request"'
        : 'Bearer error="invalid_token", error_description="The access token is invalid or expired"'
      res.writeHead(401, { 'www-authenticate': `${challenge}, resource_metadata="${prmUrl}"`, 'content-type': 'text/plain' })
        .end('unauthorized')
      return
    }
    if (options.mcpHandler !== undefined) {
      options.mcpHandler(req, res, bearer)
      return
    }
    json(res, 200, { ok: true })
  }

  const route = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const url = new URL(req.url ?? '/', origin)
    const key = `${req.method ?? ''} ${url.pathname}`
    if (key === 'GET /.well-known/oauth-authorization-server/login/oauth') {
      json(res, 200, {
        issuer,
        authorization_endpoint: fake.authorizeEndpoint,
        token_endpoint: fake.tokenEndpoint,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['S256'],
        scopes_supported: SCOPES,
        ...(options.dcr === true ? { registration_endpoint: `${issuer}/register` } : {})
      })
    } else if (key === 'GET /.well-known/oauth-protected-resource/mcp' || key === 'GET /.well-known/oauth-protected-resource/mcp/') {
      // The duplicated content-type GitHub's RS has been seen sending.
      json(res, 200, {
        resource_name: 'Fake GitHub MCP Server',
        resource: resourceUrl,
        authorization_servers: [issuer],
        scopes_supported: ['repo', 'read:org', 'gist'],
        bearer_methods_supported: ['header']
      }, 'application/json, application/json')
    } else if (key === 'GET /login/oauth/authorize') {
      authorize(res, url.searchParams)
    } else if (key === 'POST /login/oauth/access_token') {
      if (fake.tokenDelayMs > 0) setTimeout(() => token(req, res, body), fake.tokenDelayMs)
      else token(req, res, body)
    } else if (key === 'POST /login/oauth/register' && options.dcr === true) {
      register(res, body)
    } else if (req.method === 'DELETE' && url.pathname === `/applications/${fake.clientId}/token`) {
      revokeToken(req, res, body)
    } else if (key === 'GET /user' || key === 'GET /user/orgs') {
      rest(req, res, url.pathname)
    } else if (url.pathname === '/mcp' || url.pathname.startsWith('/mcp/')) {
      mcp(req, res)
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found')
    }
  }

  return fake
}

/** GitHub takes the token request form-encoded or as JSON. */
function parseBody (req: IncomingMessage, body: string): URLSearchParams {
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    try {
      const value = JSON.parse(body) as Record<string, unknown>
      const params = new URLSearchParams()
      for (const [key, item] of Object.entries(value)) if (typeof item === 'string') params.set(key, item)
      return params
    } catch {
      return new URLSearchParams()
    }
  }
  return new URLSearchParams(body)
}
