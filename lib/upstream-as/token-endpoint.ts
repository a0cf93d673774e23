import type { Clock } from '../clock.js'
import { parseScopes } from '../scopes.js'
import { UpstreamError } from './errors.js'
import { headerValue, parseJsonObject, printable, redacted, send } from './http.js'
import type { HttpLimits, JsonObject } from './http.js'
import type { UpstreamClientCredentials } from './registration.js'

/** The upstream token endpoint: the request with the gateway's client authentication, and its lenient reading. */

export interface UpstreamTokens {
  accessToken: string
  refreshToken?: string
  /** Epoch ms. Undefined means the token never expires (GitHub OAuth App tokens). */
  expiresAt?: number
  scopes: string[]
  tokenType: string
}

/**
 * POSTs a token request (RFC 6749 §4.1.3 or §6). A failure's message has the code, verifier, refresh
 * token and client secret redacted, should the AS echo them.
 */
export async function requestTokens (
  tokenEndpoint: string,
  client: UpstreamClientCredentials,
  params: Record<string, string>,
  deps: { limits: HttpLimits, clock: Clock }
): Promise<UpstreamTokens> {
  const form = new URLSearchParams(params)
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    // GitHub answers form-encoded unless asked for JSON.
    accept: 'application/json'
  }
  const secret = client.authMethod === 'none' ? undefined : client.clientSecret
  if (secret !== undefined && client.authMethod === 'client_secret_basic') {
    // RFC 6749 §2.3.1: each part is form-encoded before joining.
    const credentials = `${formEncode(client.clientId)}:${formEncode(secret)}`
    headers['authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`
  } else {
    form.set('client_id', client.clientId)
    if (secret !== undefined) form.set('client_secret', secret)
  }
  const reply = await send(tokenEndpoint, { method: 'POST', headers, body: form.toString() },
    'upstream token endpoint', deps.limits)
  try {
    return parseTokenResponse(reply.status, headerValue(reply.headers['content-type']), reply.body, deps.clock.now())
  } catch (caught) {
    throw redacted(caught as UpstreamError,
      [params['code'], params['code_verifier'], params['refresh_token'], client.clientSecret])
  }
}

/**
 * Reads a token endpoint reply. JSON or form-encoded, whatever the content-type says, and an `error`
 * field is a failure whatever the status (GitHub answers errors with HTTP 200).
 */
export function parseTokenResponse (
  status: number,
  contentType: string | undefined,
  body: string,
  now: number
): UpstreamTokens {
  const fields = parseLenient(body)
  if (fields === undefined) {
    const type = printable(contentType ?? 'no content-type', 100)
    throw new UpstreamError('bad_response',
      `upstream token endpoint answered HTTP ${status} with an unreadable body (${type})`, { status })
  }
  const error = fields['error']
  if (error !== undefined && error !== null && error !== '') {
    const code = typeof error === 'string' ? printable(error, 64) : 'unknown_error'
    const description = typeof fields['error_description'] === 'string'
      ? printable(fields['error_description'], 200)
      : ''
    throw new UpstreamError('oauth_error',
      `upstream token endpoint answered error ${code} (HTTP ${status})${description === '' ? '' : `: ${description}`}`,
      { oauthError: code, status })
  }
  if (status < 200 || status > 299) {
    throw new UpstreamError('bad_response',
      `upstream token endpoint answered HTTP ${status} without an OAuth error`, { status })
  }
  const accessToken = fields['access_token']
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new UpstreamError('bad_response', 'upstream token endpoint answered without an access_token', { status })
  }
  const tokenType = fields['token_type']
  const tokens: UpstreamTokens = {
    accessToken,
    scopes: parseScopes(fields['scope']),
    tokenType: typeof tokenType === 'string' && tokenType !== '' ? tokenType : 'bearer'
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

function formEncode (value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}
