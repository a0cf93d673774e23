import { randomUUID } from 'node:crypto'
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'

/*
 * The standalone server's logging: pino (through Fastify) as JSON lines, pretty for a person at a terminal.
 * An embedding app keeps its own logger; it should apply `REDACT_PATHS` and `serializeRequest` to it (README).
 *
 * What must never reach a log line: passwords, client secrets, PKCE verifiers, authorization codes (ours and the
 * upstream's, which arrives in the callback's query string), access and refresh tokens (ours and the upstream's),
 * cookies. The routes log events (`{ clientId, grantId }`), never bodies; this file is the net under them.
 */

/**
 * pino `redact` paths. `*.` matches one level only. Never `*.code`: it would also blank `err.code`
 * (`UND_ERR_SOCKET` becoming `[Redacted]`), so authorization codes are covered by name where they travel
 * (`query.code`, `body.code`) and by `serializeRequest` dropping query strings.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'query.code',
  'body.code',
  '*.password',
  '*.client_secret',
  '*.clientSecret',
  '*.code_verifier',
  '*.codeVerifier',
  '*.refresh_token',
  '*.refreshToken',
  '*.access_token',
  '*.accessToken',
  '*.upstreamToken',
  // An unlocked grant ({ grant, key, upstream: { record, tokens } }): its key, and the upstream tokens it opened.
  '*.key',
  '*.tokens',
  '*.token',
  '*.secret',
  '*.secrets'
]

/** What a request looks like to the serializer: Fastify's request, or a raw `IncomingMessage`. */
interface LoggedRequest {
  id?: unknown
  method?: string
  url?: string
  ip?: string
  socket?: { remoteAddress?: string, remotePort?: number } | null
}

/**
 * The `req` log serializer: method, the path WITHOUT its query string (codes travel in
 * `/upstream/callback?code=…`, flow ids in `/login?flow=…`), the client's address and the request id.
 * No headers at all.
 */
export function serializeRequest (req: LoggedRequest): {
  id?: string,
  method?: string,
  url?: string,
  remoteAddress?: string,
  remotePort?: number
} {
  const url = typeof req.url === 'string' ? req.url : undefined
  const remoteAddress = req.ip ?? req.socket?.remoteAddress
  const remotePort = req.socket?.remotePort
  return {
    ...(req.id === undefined ? {} : { id: String(req.id) }),
    ...(req.method === undefined ? {} : { method: req.method }),
    ...(url === undefined ? {} : { url: pathOf(url) }),
    ...(remoteAddress === undefined ? {} : { remoteAddress }),
    ...(remotePort === undefined ? {} : { remotePort })
  }
}

/** A request target without its query string or fragment: the part of a URL that may be logged. */
export function pathOf (url: string): string {
  const query = url.search(/[?#]/)
  return query === -1 ? url : url.slice(0, query)
}

/** What the access line reads off a request of /mcp, set there once the bearer token is checked. */
interface WithGrant { mcpAuth?: { grant: { id: string, clientId: string } } | null }

/**
 * One access line per request, written when the response is done, in place of Fastify's two ("incoming
 * request" and "request completed", each through the request or reply serializer): method, path without
 * its query, status, time, address, and on /mcp the client and grant the token belongs to. The request id
 * is on every line already (Fastify's child logger). A 404 needs no line of its own: the access line is it,
 * without the query string Fastify's own 404 line would log.
 */
export class AccessLogController extends LogController {
  override incomingRequest (): void {}

  override routeNotFound (): void {}

  override requestCompleted (err: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const grant = (req as WithGrant).mcpAuth?.grant
    const line = {
      method: req.method,
      url: pathOf(req.url),
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 10) / 10,
      remoteAddress: req.ip,
      ...(grant === undefined ? {} : { clientId: grant.clientId, grantId: grant.id })
    }
    if (err === null || err === undefined) req.log.info(line, 'request completed')
    else req.log.error({ ...line, err }, 'request errored')
  }
}

/**
 * Request ids are made here and never taken from the client: an `X-Request-Id` from outside would let anyone
 * forge or collide the ids an operator correlates by. A UUID, not Fastify's per-process counter, so ids stay
 * unique across restarts and replicas sharing one log collector.
 */
export const genReqId = (): string => randomUUID()

export interface LogSettings {
  level: string
  /** pino-pretty instead of JSON lines: for a terminal (`process.stdout.isTTY`), never for collectors. */
  pretty: boolean
}

/** The Fastify server options of the standalone server's logging: logger, access lines, request ids. */
export function loggerOptions (
  { level, pretty }: LogSettings
): Pick<FastifyServerOptions, 'logger' | 'logController' | 'genReqId' | 'requestIdHeader'> {
  return {
    logController: new AccessLogController(),
    logger: {
      level,
      redact: [...REDACT_PATHS],
      serializers: { req: serializeRequest },
      ...(pretty
        ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } }
        : {})
    },
    genReqId,
    // Fastify 5's default already; explicit because trusting the header would undo genReqId.
    requestIdHeader: false
  }
}
