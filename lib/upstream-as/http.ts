import { request } from 'undici'
import type { Dispatcher } from 'undici'
import { UpstreamError } from './errors.js'

/**
 * Bounded outbound HTTP: every request has a deadline for headers and body together, every body read is
 * capped, and every failure is an UpstreamError whose message is safe for logs. Also the helpers that keep
 * a remote party's text and URLs printable in those messages.
 */

export interface HttpLimits {
  timeoutMs: number
  /** The largest body read, bytes; 1 MiB unless given. */
  maxBodyBytes?: number
  dispatcher?: Dispatcher | undefined
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'DELETE'
  headers: Record<string, string>
  body?: string
  /** False: headers only, the body is discarded unread (an endless SSE stream would never end). */
  readBody?: boolean
}

export interface HttpReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

export type JsonObject = Record<string, unknown>

// A hostile or broken server must not be able to make the gateway buffer without bound.
const MAX_BODY_BYTES = 1024 * 1024
const MIN_REDACTED_LENGTH = 8

/** Sends one request; `what` names the other end in error messages, e.g. "upstream token endpoint". */
export async function send (url: string, init: HttpRequest, what: string, limits: HttpLimits): Promise<HttpReply> {
  const timeout = limits.timeoutMs
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
      ...(limits.dispatcher === undefined ? {} : { dispatcher: limits.dispatcher })
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
    return { ...reply, body: await readCapped(response.body, where, limits.maxBodyBytes ?? MAX_BODY_BYTES) }
  } catch (err) {
    throw err instanceof UpstreamError ? err : networkError(err, where, timeout)
  }
}

async function readCapped (body: Dispatcher.ResponseData['body'], where: string, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > maxBytes) {
      discard(body)
      throw new UpstreamError('bad_response', `${where} sent a reply larger than ${maxBytes} bytes`)
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
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
 * A server that echoes what we sent (in error_description, even in error) must not put it in our
 * logs. Values too short to be real credentials are left alone: they would shred ordinary words.
 */
export function redacted (err: UpstreamError, secrets: Array<string | undefined>): UpstreamError {
  const scrub = (text: string): string => secrets.reduce<string>((clean, secret) =>
    secret === undefined || secret.length < MIN_REDACTED_LENGTH ? clean : clean.split(secret).join('[redacted]'), text)
  const message = scrub(err.message)
  if (message === err.message) return err
  // No `cause`: it would carry the unredacted message.
  return new UpstreamError(err.kind, message, {
    status: err.status,
    oauthError: err.oauthError === undefined ? undefined : scrub(err.oauthError)
  })
}

export function parseJsonObject (text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as JsonObject : undefined
  } catch {
    return undefined
  }
}

export function headerValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

export function isHttpUrl (value: string): boolean {
  if (!URL.canParse(value)) return false
  const protocol = new URL(value).protocol
  return protocol === 'https:' || protocol === 'http:'
}

export function hostOf (url: string): string {
  return URL.canParse(url) ? new URL(url).host : printable(url, 100)
}

/** For messages: origin and path only, so userinfo or a query never reaches a log. */
export function describe (url: string): string {
  return URL.canParse(url) ? describeUrl(new URL(url)) : printable(url, 100)
}

export function describeUrl (url: URL): string {
  return url.origin + url.pathname
}

/** A remote party's text in our messages: printable ASCII, bounded, so it cannot forge log lines. */
export function printable (text: string, max: number): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > max ? clean.slice(0, max) + '…' : clean
}
