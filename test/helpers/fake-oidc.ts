import { createHash, createSign, generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeOidcUser { sub: string, email?: string, emailVerified?: boolean, name?: string }

export interface FakeOidc {
  /** http://127.0.0.1:port — also the issuer (no path). */
  issuer: string
  /** Default 'gateway-sso-client'. */
  clientId: string
  /** Default 'gateway-sso-secret-0123456789abcdef'. */
  clientSecret: string
  /**
   * Who signs in at the next /authorize (default { sub: 'u-alice', email: 'alice@example.com', emailVerified: true,
   * name: 'Alice' }).
   */
  user: FakeOidcUser
  /**
   * Tampering for the next ID tokens, until set back to undefined: 'signature' (flip a byte of the signature),
   * 'nonce' (a different nonce), 'audience' (aud another client), 'issuer' (iss another URL), 'expired' (exp in
   * the past).
   */
  tamper: undefined | 'signature' | 'nonce' | 'audience' | 'issuer' | 'expired'
  /** Every request received, in order; `path` includes the query string. */
  requests: Array<{ method: string, path: string, body: string }>
  close (): Promise<void>
}

const CODE_TTL_MS = 60 * 1000
const ACCESS_TOKEN_EXPIRES_IN = 3600
const ID_TOKEN_TTL_S = 300

interface CodeRecord {
  clientId: string
  redirectUri: string
  nonce: string | undefined
  challenge: string
  scope: string
  user: FakeOidcUser
  expiresAt: number
}

type TokenError = 'invalid_grant' | 'invalid_client' | 'invalid_request' | 'unsupported_grant_type'

/**
 * An OpenID Connect provider on 127.0.0.1, enough for the gateway's "sign in with SSO": discovery, JWKS, the
 * authorization code flow with PKCE S256 only, client_secret_basic or client_secret_post at the token endpoint,
 * RS256 ID tokens (which `tamper` can spoil in one way at a time) and userinfo. One client, no registration.
 */
export async function startFakeOidc (options: { clientId?: string, clientSecret?: string } = {}): Promise<FakeOidc> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const { n, e } = publicKey.export({ format: 'jwk' })
  // RFC 7638 thumbprint as the kid.
  const kid = createHash('sha256').update(JSON.stringify({ e, kty: 'RSA', n })).digest('base64url')
  const jwk = { kty: 'RSA', n, e, kid, alg: 'RS256', use: 'sig' }

  const codes = new Map<string, CodeRecord>()
  const accessTokens = new Map<string, { user: FakeOidcUser, expiresAt: number }>()

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      fake.requests.push({ method: req.method ?? '', path: req.url ?? '', body })
      try {
        route(req, res, body)
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const fake: FakeOidc = {
    issuer,
    clientId: options.clientId ?? 'gateway-sso-client',
    clientSecret: options.clientSecret ?? 'gateway-sso-secret-0123456789abcdef',
    user: { sub: 'u-alice', email: 'alice@example.com', emailVerified: true, name: 'Alice' },
    tamper: undefined,
    requests: [],
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }

  const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers })
      .end(JSON.stringify(value))
  }

  const text = (res: ServerResponse, status: number, message: string): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(message)
  }

  const tokenError = (res: ServerResponse, error: TokenError, description: string, basicAttempted = false): void => {
    if (error === 'invalid_client') {
      // RFC 6749 §5.2: 401, with a challenge for the scheme the client tried.
      json(res, 401, { error, error_description: description },
        basicAttempted ? { 'www-authenticate': 'Basic realm="fake-oidc"' } : {})
    } else {
      json(res, 400, { error, error_description: description })
    }
  }

  const userClaims = (user: FakeOidcUser): Record<string, unknown> => ({
    sub: user.sub,
    ...(user.email !== undefined ? { email: user.email } : {}),
    ...(user.emailVerified !== undefined ? { email_verified: user.emailVerified } : {}),
    ...(user.name !== undefined ? { name: user.name } : {})
  })

  const idToken = (record: CodeRecord): string => {
    const tamper = fake.tamper
    const now = Math.floor(Date.now() / 1000)
    const nonce = tamper === 'nonce' ? `tampered-${randomBytes(8).toString('hex')}` : record.nonce
    const claims = {
      iss: tamper === 'issuer' ? `${issuer}/another-issuer` : issuer,
      ...userClaims(record.user),
      aud: tamper === 'audience' ? 'another-client' : record.clientId,
      // Expired well past any client's clock tolerance (openid-client allows 30 s).
      exp: tamper === 'expired' ? now - 600 : now + ID_TOKEN_TTL_S,
      iat: tamper === 'expired' ? now - 600 - ID_TOKEN_TTL_S : now,
      ...(nonce !== undefined ? { nonce } : {})
    }
    const header = { alg: 'RS256', typ: 'JWT', kid }
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
    const signature = createSign('RSA-SHA256').update(signingInput).sign(privateKey)
    if (tamper === 'signature') signature[0] = (signature[0] ?? 0) ^ 0x01
    return `${signingInput}.${signature.toString('base64url')}`
  }

  const authorize = (res: ServerResponse, query: URLSearchParams): void => {
    if (query.get('client_id') !== fake.clientId) {
      text(res, 400, 'Unknown client_id.')
      return
    }
    const redirectUri = query.get('redirect_uri')
    if (redirectUri === null || !URL.canParse(redirectUri)) {
      text(res, 400, 'Missing or invalid redirect_uri.')
      return
    }
    // From here errors go back to the client (OIDC Core §3.1.2.6), with state and iss like a success.
    const target = new URL(redirectUri)
    const scope = query.get('scope') ?? ''
    const challenge = query.get('code_challenge')
    const fail = (error: string, description: string): void => {
      target.searchParams.set('error', error)
      target.searchParams.set('error_description', description)
    }
    if (query.get('response_type') !== 'code') {
      fail('unsupported_response_type', 'response_type must be code')
    } else if (!scope.split(' ').includes('openid')) {
      fail('invalid_scope', 'scope must include openid')
    } else if (challenge === null || !/^[A-Za-z0-9_-]{43}$/.test(challenge) || query.get('code_challenge_method') !== 'S256') {
      fail('invalid_request', 'PKCE with code_challenge_method S256 is required')
    } else {
      const code = randomBytes(32).toString('base64url')
      codes.set(code, {
        clientId: fake.clientId,
        redirectUri,
        nonce: query.get('nonce') ?? undefined,
        challenge,
        scope,
        user: { ...fake.user },
        expiresAt: Date.now() + CODE_TTL_MS
      })
      target.searchParams.set('code', code)
    }
    const state = query.get('state')
    if (state !== null) target.searchParams.set('state', state)
    target.searchParams.set('iss', issuer)
    res.writeHead(302, { location: target.href }).end()
  }

  const token = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      tokenError(res, 'invalid_request', 'the body must be application/x-www-form-urlencoded')
      return
    }
    const params = new URLSearchParams(body)
    const authorization = req.headers.authorization
    let clientId: string | null
    let clientSecret: string | null
    if (authorization !== undefined) {
      const credentials = parseBasic(authorization)
      if (credentials === undefined) {
        tokenError(res, 'invalid_client', 'malformed Basic credentials', true)
        return
      }
      if (params.has('client_secret')) {
        tokenError(res, 'invalid_request', 'more than one client authentication method')
        return
      }
      [clientId, clientSecret] = credentials
    } else {
      clientId = params.get('client_id')
      clientSecret = params.get('client_secret')
    }
    if (clientId !== fake.clientId || clientSecret !== fake.clientSecret) {
      tokenError(res, 'invalid_client', 'client authentication failed', authorization !== undefined)
      return
    }
    const grantType = params.get('grant_type')
    if (grantType === null) {
      tokenError(res, 'invalid_request', 'grant_type is required')
      return
    }
    if (grantType !== 'authorization_code') {
      tokenError(res, 'unsupported_grant_type', 'only authorization_code is supported')
      return
    }
    const code = params.get('code')
    const verifier = params.get('code_verifier')
    const redirectUri = params.get('redirect_uri')
    if (code === null || verifier === null || redirectUri === null) {
      tokenError(res, 'invalid_request', 'code, code_verifier and redirect_uri are required')
      return
    }
    const record = codes.get(code)
    if (record === undefined || record.clientId !== clientId) {
      tokenError(res, 'invalid_grant', 'unknown or already used code')
      return
    }
    // Single use: whatever the outcome, a presented code is spent.
    codes.delete(code)
    if (record.expiresAt <= Date.now()) {
      tokenError(res, 'invalid_grant', 'the code has expired')
    } else if (record.redirectUri !== redirectUri) {
      tokenError(res, 'invalid_grant', 'redirect_uri does not match the authorization request')
    } else if (createHash('sha256').update(verifier).digest('base64url') !== record.challenge) {
      tokenError(res, 'invalid_grant', 'PKCE verification failed')
    } else {
      const accessToken = randomBytes(32).toString('base64url')
      accessTokens.set(accessToken, { user: record.user, expiresAt: Date.now() + ACCESS_TOKEN_EXPIRES_IN * 1000 })
      json(res, 200, {
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: ACCESS_TOKEN_EXPIRES_IN,
        id_token: idToken(record),
        scope: record.scope
      }, { pragma: 'no-cache' })
    }
  }

  const userinfo = (req: IncomingMessage, res: ServerResponse): void => {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    const record = bearer === undefined ? undefined : accessTokens.get(bearer)
    if (record === undefined || record.expiresAt <= Date.now()) {
      const challenge = bearer === undefined ? 'Bearer realm="fake-oidc"' : 'Bearer realm="fake-oidc", error="invalid_token"'
      json(res, 401, { error: bearer === undefined ? 'invalid_request' : 'invalid_token' }, { 'www-authenticate': challenge })
      return
    }
    json(res, 200, userClaims(record.user))
  }

  const route = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const url = new URL(req.url ?? '/', issuer)
    const key = `${req.method ?? ''} ${url.pathname}`
    if (key === 'GET /.well-known/openid-configuration') {
      json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        userinfo_endpoint: `${issuer}/userinfo`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        scopes_supported: ['openid', 'email', 'profile'],
        claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce', 'email', 'email_verified', 'name'],
        // RFC 9207: every authorization response carries iss.
        authorization_response_iss_parameter_supported: true
      })
    } else if (key === 'GET /jwks') {
      json(res, 200, { keys: [jwk] })
    } else if (key === 'GET /authorize') {
      authorize(res, url.searchParams)
    } else if (key === 'POST /token') {
      token(req, res, body)
    } else if (key === 'GET /userinfo') {
      userinfo(req, res)
    } else {
      text(res, 404, 'Not Found')
    }
  }

  return fake
}

function base64url (value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url')
}

/** RFC 6749 §2.3.1: Basic over the form-urlencoded client id and secret. */
function parseBasic (header: string): [string, string] | undefined {
  const encoded = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header)?.[1]
  if (encoded === undefined) return undefined
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  try {
    const unform = (part: string): string => decodeURIComponent(part.replace(/\+/g, ' '))
    return [unform(decoded.slice(0, colon)), unform(decoded.slice(colon + 1))]
  } catch {
    return undefined
  }
}
