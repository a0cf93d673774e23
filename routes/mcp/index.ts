import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { OutgoingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import { errors as undiciErrors, type Dispatcher } from 'undici'
import type { AuthenticatedRequest, UnlockedGrant } from '../../lib/grants.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { isDotSegment, isWithinResource, normaliseResource } from '../../lib/resource.js'
import { originOf, withoutTrailingSlashes } from '../../lib/url.js'
import type { GatewayContext } from '../../plugins/context.js'
import cors from '../../plugins/cors.js'
import { classifyRequestError, type RequestErrorKind } from '../request-errors.js'
import { createProxyAnswers } from './answers.js'
import { UpstreamExchange } from './exchange.js'
import { clientResponseHeaders, insufficientScope, upstreamRequestHeaders } from './headers.js'
import { StreamLimits } from './stream-limits.js'
import { subTarget, type SubTarget } from './target.js'
import { UpstreamPool } from './upstream-pool.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** What this request's bearer token unlocks, set by the authentication hook of /mcp. */
    mcpAuth: AuthenticatedRequest | null
    /** The target below /mcp, parsed once by that hook; null when the target's path is outside the mount. */
    mcpTarget: SubTarget | null
  }
}

/** The `error` of the proxy's own JSON answers, where it is not `invalid_request`. */
const PROXY_ERROR_CODES: Partial<Record<RequestErrorKind, string>> = {
  body_too_large: 'request_too_large',
  store_full: 'temporarily_unavailable',
  bug: 'server_error'
}

// Upstream answers up to this size (with a Content-Length) are read whole before they are sent on.
const WHOLE_BODY_MAX = 64 * 1024
/** Sub-path characters that cannot smuggle a separator: no backslash, no encoded `/` or `\`. */
const SAFE_SUB_PATH = /^(?:(?!%2f|%5c)[^\\])*$/i

/**
 * The resource server and transparent proxy: every request to /mcp (and below) is authenticated
 * with a gateway access token, then forwarded to the upstream MCP server with the upstream's token
 * in its place. Bodies go through as bytes; responses (JSON or SSE) stream back without buffering.
 */
const mcp: FastifyPluginAsync = async (app) => {
  const { options, urls, grants, sessions, clock, scopeNeeds, events } = app.getDecorator<GatewayContext>('mcpGateway')
  const upstreamUrl = new URL(options.upstreamRs)
  const upstreamBase = withoutTrailingSlashes(upstreamUrl.pathname)
  const upstreamQuery = upstreamUrl.search.slice(1)
  // Exchanges open at once, per grant and in total (stream-limits.ts).
  const limits = new StreamLimits({ maxTotal: options.maxStreams, maxPerGrant: options.maxStreamsPerGrant })
  // Keep-alive to one origin, with as many connections as exchanges may be open (each open event stream holds
  // one), so no exchange ever waits for a connection; a fresh pool after a burst, so what a burst leaves
  // behind goes (upstream-pool.ts).
  const pool = new UpstreamPool(
    upstreamUrl.origin,
    { connections: options.maxStreams, bodyTimeout: 0, headersTimeout: options.proxyTimeout },
    {
      clock,
      onReplace: (peak) => { app.log.info({ peak }, 'upstream connection pool replaced after a burst') }
    }
  )
  app.addHook('onClose', async () => { await pool.destroy() })
  // Open event streams, each with what closing the gateway does to it, in preClose: the server only
  // finishes closing once they are gone, and the onClose hooks (the pool's) run after that. A GET
  // stream (the upstream's channel to the client, which never ends by itself) is ended at once and
  // cleanly, so the client sees the stream end, not a reset, and reconnects elsewhere. A POST answered
  // with a stream is a call in flight: it gets the grace time to finish, like any other request. Either
  // way the connection closes once the response is complete: Node leaves a keep-alive connection that
  // turns idle after server.close() open, and close() would wait for it.
  const streams = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const close of streams) close()
  })

  const mountPath = `${app.prefix}/mcp`
  const publicOrigin = originOf(urls.issuer)
  const allowedOrigins = new Set([publicOrigin, ...options.allowedOrigins])
  const forwarded = new Set(options.forwardHeaders)
  const prmBase = urls.protectedResourceMetadata
  // The canonical spelling tokens are bound with; publicUrl always yields one.
  const gatewayResource = normaliseResource(urls.resource) ?? urls.resource
  // What MCP's transport uses; every other method Fastify routes gets a 405 naming these.
  const proxiedMethods = options.disableGetStream ? ['POST', 'DELETE'] : ['GET', 'POST', 'DELETE']
  const allow = proxiedMethods.join(', ')
  // The gateway's own answers: challenges, refusals, upstream failures (answers.ts).
  const answers = createProxyAnswers({ grants, events, limits, prmBase, mcpScope: options.mcpScope })
  const { challenge, upstreamRejected, upstreamTokenLost, outsideMount, overLimit, unavailable } = answers
  const { upstreamTimeout, upstreamFailure } = answers
  // Browser clients (MCP Inspector) on an allowed origin: every request header the transport may
  // carry (Mcp-Param-* names cannot be listed), and the headers they must read back.
  // First among this scope's hooks, so preflights never meet the bearer check.
  await app.register(cors, {
    origins: [...allowedOrigins],
    methods: proxiedMethods,
    allowHeaders: 'requested',
    exposeHeaders: ['Mcp-Session-Id', 'Mcp-Protocol-Version', 'WWW-Authenticate'],
    maxAgeSeconds: 86_400
  })

  app.decorateRequest('mcpAuth', null)
  app.decorateRequest('mcpTarget', null)
  // The body stays bytes: never parsed, never re-serialised, whatever its content type.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.maxBodySize }, (_req, body, done) => {
    done(null, body)
  })
  // The status comes from the mapping the JSON and HTML handlers share (classifyRequestError); the
  // wording is the proxy's own.
  app.setErrorHandler(async (err: Error, req, reply) => {
    const problem = classifyRequestError(err)
    // The proxy writes no bounded record, so of the store's errors only "unavailable" is expected here; a full
    // store would still be a 503 with Retry-After (PROXY_ERROR_CODES).
    if (problem.kind === 'store_unavailable') {
      req.log.error({ err: { message: err.message } }, 'store unavailable')
      return await unavailable(reply, 'the gateway cannot reach its storage')
    }
    if (problem.kind === 'bug') req.log.error({ err }, 'mcp proxy failed')
    if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds))
    return await reply.code(problem.status).send({ error: PROXY_ERROR_CODES[problem.kind] ?? 'invalid_request' })
  })

  // One hook for both checks: MCP transports refuse a browser page from an unknown origin (DNS
  // rebinding), and every request carries a gateway access token in the Authorization header (never
  // in the query).
  app.addHook('onRequest', async (req, reply) => {
    // Read once from the target's path alone: never the authority of an absolute-form target.
    req.mcpTarget = subTarget(req.url, mountPath) ?? null
    const origin = req.headers.origin
    if (origin !== undefined && !allowedOrigins.has(origin)) {
      req.log.info({ origin: origin.slice(0, 200) }, 'mcp request from a foreign origin refused')
      return await reply.code(403).send({ error: 'forbidden', error_description: 'origin not allowed' })
    }
    const header = req.headers.authorization
    const match = header === undefined ? null : /^Bearer +([\x21-\x7e]+) *$/i.exec(header)
    if (match?.[1] === undefined) return await challenge(req, reply)
    const found = await grants.authenticate(match[1])
    // A token covers the resource it is bound to and every path below it (lib/resource.ts): one for /mcp
    // every toolset view, one for /mcp/x/repos that view alone. Dot segments never get past forward().
    if (found === undefined || (found.access.resource !== gatewayResource &&
      !isWithinResource(gatewayResource + (req.mcpTarget?.path ?? ''), found.access.resource))) {
      return await challenge(req, reply, 'invalid_token', 'the access token is invalid or expired')
    }
    req.mcpAuth = found
  })

  async function forward (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const auth = req.mcpAuth as AuthenticatedRequest
    let grant: UnlockedGrant = auth
    const target = req.mcpTarget
    if (target === null) return await outsideMount(reply)
    const restPath = target.path
    // The upstream (or a CDN before it) may resolve `..`: the user's token must not leave /mcp.
    if (!SAFE_SUB_PATH.test(restPath) || restPath.split('/').some(isDotSegment)) return await outsideMount(reply)
    const grantId = auth.grant.id
    const refusal = limits.acquire(grantId)
    if (refusal !== undefined) return await overLimit(req, reply, refusal, grantId)
    // The exchange in flight, for the client-leave handler to cancel.
    let exchange: UpstreamExchange | undefined
    let clientLeft = false
    // The one place every exchange ends, whatever ends it (answered, refused, cut, the client gone): its slot
    // is given back. 'close' before the response finished means the client left: cancel the upstream request now.
    reply.raw.on('close', () => {
      limits.release(grantId)
      if (reply.raw.writableFinished) return
      clientLeft = true
      exchange?.abort(new undiciErrors.RequestAbortedError())
    })

    const sessionId = req.headers['mcp-session-id']
    if (typeof sessionId === 'string' && !(await sessions.mayUse(sessionId, auth.grant.id))) {
      req.log.warn({ grantId: auth.grant.id }, 'mcp session id of another grant refused')
      return await reply.code(404).send({
        jsonrpc: '2.0',
        error: { code: -32001, message: 'Session not found' },
        id: null
      })
    }

    if (!grants.isUpstreamFresh(grant)) {
      try {
        grant = await grants.freshUpstream(grant, req.log)
      } catch (err) {
        return await upstreamTokenLost(req, reply, err)
      }
    }
    const clientQuery = target.query
    const search = upstreamQuery === '' || clientQuery === ''
      ? upstreamQuery + clientQuery
      : `${upstreamQuery}&${clientQuery}`
    const path = `${upstreamBase}${restPath}${search === '' ? '' : `?${search}`}`
    const body = req.method === 'POST' ? req.body as Buffer : null

    const send = async (g: UnlockedGrant): Promise<UpstreamExchange> => {
      const started = performance.now()
      const headers = upstreamRequestHeaders(
        req.headers,
        forwarded,
        options.upstreamHeaders,
        grants.upstreamAccessToken(g)
      )
      exchange = new UpstreamExchange(pool, { method: req.method as Dispatcher.HttpMethod, path, headers, body })
      if (clientLeft) exchange.abort(new undiciErrors.RequestAbortedError())
      await exchange.responded()
      events.emit('proxy_response', { method: req.method, seconds: (performance.now() - started) / 1000 })
      return exchange
    }

    let upstream: UpstreamExchange
    try {
      upstream = await send(grant)
      if (upstream.statusCode === 401) {
        upstream.dump()
        let recovered: UnlockedGrant | undefined
        try {
          recovered = await grants.recoverUpstream(grant, req.log)
        } catch (err) {
          // Refused upstream (invalid_grant): the login is over. Anything else (the upstream's token
          // endpoint or our store away) passes: a 503, and the grant stays.
          if (!(err instanceof OAuthError && err.error === 'invalid_grant')) {
            return await upstreamTokenLost(req, reply, err)
          }
        }
        if (recovered === undefined) return await upstreamRejected(req, reply, grant)
        grant = recovered
        upstream = await send(grant)
        if (upstream.statusCode === 401) {
          upstream.dump()
          return await upstreamRejected(req, reply, grant)
        }
      }
    } catch (err) {
      return await upstreamFailure(req, reply, err, clientLeft)
    }

    if (upstream.statusCode === 403) {
      const needed = insufficientScope(upstream.headers['www-authenticate'])
      if (needed !== undefined) {
        upstream.dump()
        await scopeNeeds.add(grant.grant.userId, needed)
        events.emit('upstream_error', { kind: 'upstream_403_scope' })
        req.log.info({ grantId: grant.grant.id, scopes: needed }, 'upstream asked for more scopes')
        return await challenge(
          req,
          reply,
          'insufficient_scope',
          `the upstream needs more scopes${needed.length > 0 ? `: ${needed.join(' ')}` : ''}; authorize again`,
          403
        )
      }
    }

    const headers = clientResponseHeaders(upstream.headers)
    // The CORS hook's Vary: Origin stays, next to whatever the upstream's answer varies by.
    if (headers.vary !== undefined && reply.hasHeader('vary')) {
      headers.vary = `${String(reply.getHeader('vary'))}, ${String(headers.vary)}`
    }
    const newSession = upstream.headers['mcp-session-id']
    if (typeof newSession === 'string' && newSession !== sessionId) await sessions.bind(newSession, grant.grant.id)
    if (req.method === 'DELETE' && typeof sessionId === 'string' && upstream.statusCode < 300) {
      await sessions.forget(sessionId)
    }

    const sse = String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream')
    if (!sse) {
      // A small answer of announced length (most JSON-RPC results) goes out whole: one write for
      // headers and body, without a stream between undici and the socket. Anything larger, or of
      // unknown length, streams.
      if (Number(upstream.headers['content-length']) <= WHOLE_BODY_MAX) {
        let body = upstream.received
        if (body === undefined) {
          // The client has nothing yet, so an upstream that stalls mid-answer gets the same bound as one
          // that is slow to answer at all.
          let stalled = false
          const timer = setTimeout(() => {
            stalled = true
            upstream.abort(new Error('the upstream stalled mid-answer'))
          }, options.proxyTimeout)
          try {
            body = await upstream.whole()
          } catch (err) {
            return stalled ? await upstreamTimeout(req, reply) : await upstreamFailure(req, reply, err, clientLeft)
          } finally {
            clearTimeout(timer)
          }
        }
        return await reply.code(upstream.statusCode).headers(headers).send(body)
      }
      return await reply.code(upstream.statusCode).headers(headers).send(upstream.stream())
    }
    // Proxies in front of us (nginx) would buffer events otherwise.
    headers['x-accel-buffering'] = 'no'
    headers['cache-control'] ??= 'no-cache, no-transform'
    // An event stream is ours from here on: Fastify would hold the headers back until the first
    // chunk, and an idle GET stream would never announce itself. reply.getHeaders() carries what our
    // hooks set (CORS) onto the raw response.
    reply.hijack()
    reply.raw.writeHead(upstream.statusCode, { ...reply.getHeaders(), ...headers } as OutgoingHttpHeaders)
    reply.raw.flushHeaders()
    // Who ended the stream, for its closing log line: the client unless something else did first.
    let closedBy: 'client' | 'upstream' | 'upstream_error' | 'gateway' = 'client'
    const openedAt = performance.now()
    const close = (): void => {
      const socket = reply.raw.socket
      reply.raw.once('finish', () => { socket?.end() })
      if (req.method !== 'GET') return
      // The upstream side is cut on purpose, before the client's stream ends cleanly.
      closedBy = 'gateway'
      upstream.abort(new Error('the gateway is shutting down'))
      reply.raw.end()
    }
    streams.add(close)
    events.emit('stream_opened', {})
    reply.raw.on('close', () => {
      streams.delete(close)
      events.emit('stream_closed', {})
      const durationMs = Math.round(performance.now() - openedAt)
      req.log.info({ grantId: grant.grant.id, durationMs, bytes: upstream.bytes, closedBy }, 'mcp stream closed')
    })
    // Event by event, with backpressure. A client that leaves aborts the exchange (the 'close' listener at
    // the top); an upstream that leaves ends the client's stream, or cuts it if the upstream failed.
    upstream.relay(reply.raw, (err) => {
      if (err === undefined) {
        closedBy = 'upstream'
        reply.raw.end()
      } else if (closedBy !== 'gateway') {
        if (!clientLeft) {
          closedBy = 'upstream_error'
          req.log.info({ err: { message: err.message } }, 'mcp stream ended early')
        }
        reply.raw.destroy()
      }
    })
    return reply
  }

  // No HEAD twin of GET: Fastify's would proxy a HEAD as a GET stream, past disableGetStream. OPTIONS is CORS's.
  const refusedMethods = app.supportedMethods.filter(
    (method) => method !== 'OPTIONS' && !proxiedMethods.includes(method)
  )
  const notAllowed = { error: 'method_not_allowed', error_description: `this endpoint takes ${allow}` }
  for (const url of ['/mcp', '/mcp/*']) {
    app.route({ method: proxiedMethods, url, exposeHeadRoute: false, handler: forward })
    app.route({
      method: refusedMethods,
      url,
      handler: async (_req, reply) => await reply.code(405).header('allow', allow).send(notAllowed)
    })
  }
}

export default mcp
