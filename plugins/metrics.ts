import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { GRANT_REVOCATION_REASONS, UPSTREAM_FAILURE_KINDS } from '../lib/events.js'
import type { GatewayContext } from './context.js'

/** The gateway's metrics for a server to expose elsewhere, such as on a listener of its own. */
export interface GatewayMetrics {
  /** The Prometheus text format's content type. */
  readonly contentType: string
  /** Every metric of the gateway, in that format. */
  scrape (): Promise<string>
}

export interface MetricsPluginOptions {
  /** Where the metrics are served, under the gateway's prefix (validated with the options); false: no route. */
  path: string | false
  /**
   * Called once at registration with the gateway's metrics, for a server that serves them itself. Without it
   * and without a path nothing is counted: no hook, no listener on the event bus.
   */
  onMetrics?: (metrics: GatewayMetrics) => void
}

// Time to the upstream's response headers: a tool call can take minutes (proxyTimeout is 300 s by default).
const PROXY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/**
 * Prometheus metrics for the gateway, in a registry of its own: never prom-client's global one, so two
 * gateways in one process, or a host app with its own metrics, never collide. Counts what the gateway's
 * event bus reports (OAuth events, upstream errors, proxy latency, open streams) and every request by
 * route pattern (never the raw URL, which could carry a code or an unbounded number of values).
 *
 * fp-wrapped so that its request hook covers every route of the gateway: register it in the gateway's
 * scope after the context and before the routes. The gateway root is not fp, so the host sees none of it.
 */
const metrics: FastifyPluginAsync<MetricsPluginOptions> = async (app, opts) => {
  const { path, onMetrics } = opts
  if (path === false && onMetrics === undefined) return
  const { events } = app.getDecorator<GatewayContext>('mcpGateway')

  const registry = new Registry()
  const registers = [registry]

  // Counted on every request, so kept as plain numbers (route → method → status → count) and copied into
  // the counter when metrics are scraped: prom-client's inc() validates and hashes its labels per call.
  const requestCounts = new Map<string, Map<string, Map<number, number>>>()
  registry.registerMetric(new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered by the gateway, by route pattern, method and status (499: the client left before the response started)',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [],
    collect () {
      this.reset()
      for (const [route, methods] of requestCounts) {
        for (const [method, statuses] of methods) {
          for (const [status, count] of statuses) this.inc({ route, method, status: String(status) }, count)
        }
      }
    }
  }))
  const proxyDuration = new Histogram({
    name: 'mcp_proxy_duration_seconds',
    help: 'Time from forwarding an MCP request to the upstream MCP server\'s response headers, seconds',
    labelNames: ['method'] as const,
    buckets: PROXY_BUCKETS,
    registers
  })
  const openStreams = new Gauge({
    name: 'mcp_open_streams',
    help: 'SSE streams open from the upstream MCP server to clients',
    registers
  })
  // The gateway's counters, each in its registry with the labels it is counted by.
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
    new Counter({ name, help, labelNames, registers })
  const clientsRegistered = counter('oauth_clients_registered_total', 'Clients registered (RFC 7591)')
  const logins = counter('oauth_logins_total', 'Sign-ins at the gateway\'s login page, by result', ['result'])
  const consents = counter(
    'oauth_consents_total',
    'Answers on the consent page, by decision and whether it was remembered',
    ['decision', 'remembered']
  )
  const codes = counter('oauth_codes_issued_total', 'Authorization codes issued to clients')
  const tokens = counter(
    'oauth_tokens_issued_total', 'Token responses issued, by grant type (refresh_token: refreshes)', ['grant_type']
  )
  const reuse = counter(
    'oauth_refresh_reuse_detected_total',
    'Rotated refresh tokens presented again (the grant is revoked)'
  )
  const repeated = counter(
    'oauth_refresh_repeated_total',
    'Refreshes with a just-rotated token answered with the same tokens (--refresh-grace)'
  )
  const replay = counter('oauth_code_replay_detected_total', 'Authorization codes used again (the grant is revoked)')
  const revoked = counter('oauth_grants_revoked_total', 'Grants ended before their time, by reason', ['reason'])
  const upstreamErrors = counter('upstream_errors_total', 'Failures talking to the upstream, by kind', ['kind'])

  // Known series start at 0, so rates and alerts work before the first occurrence.
  for (const result of ['success', 'failure']) logins.inc({ result }, 0)
  for (const [decision, remembered] of [['approved', 'false'], ['approved', 'true'], ['denied', 'false']]) {
    consents.inc({ decision, remembered }, 0)
  }
  for (const grantType of ['authorization_code', 'refresh_token']) tokens.inc({ grant_type: grantType }, 0)
  for (const reason of GRANT_REVOCATION_REASONS) revoked.inc({ reason }, 0)
  for (const kind of UPSTREAM_FAILURE_KINDS) upstreamErrors.inc({ kind }, 0)

  const unsubscribe = [
    events.on('client_registered', () => { clientsRegistered.inc() }),
    events.on('login_succeeded', () => { logins.inc({ result: 'success' }) }),
    events.on('login_failed', () => { logins.inc({ result: 'failure' }) }),
    events.on('consent_given', (e) => { consents.inc({ decision: 'approved', remembered: String(e.remembered) }) }),
    events.on('consent_denied', () => { consents.inc({ decision: 'denied', remembered: 'false' }) }),
    events.on('code_issued', () => { codes.inc() }),
    events.on('tokens_issued', (e) => { tokens.inc({ grant_type: e.grantType }) }),
    events.on('refresh_reuse_detected', () => { reuse.inc() }),
    events.on('refresh_repeated', () => { repeated.inc() }),
    events.on('code_replay_detected', () => { replay.inc() }),
    events.on('grant_revoked', (e) => { revoked.inc({ reason: e.reason }) }),
    events.on('upstream_error', (e) => { upstreamErrors.inc({ kind: e.kind }) }),
    events.on('proxy_response', (e) => { proxyDuration.observe({ method: e.method }, e.seconds) }),
    events.on('stream_opened', () => { openStreams.inc() }),
    events.on('stream_closed', () => { openStreams.dec() })
  ]
  app.addHook('onClose', async () => {
    for (const off of unsubscribe) off()
  })

  // On the raw response's 'close', which comes after the response is finished and also when the
  // client leaves mid-way (an SSE stream usually ends so), where onResponse would not run. A callback
  // hook: no promise per request for something this small.
  app.addHook('onRequest', (req, reply, done) => {
    reply.raw.on('close', () => {
      // A 404 never gets here (the gateway leaves not-found to the host), but the type allows no route.
      /* c8 ignore next */
      const route = req.routeOptions.url ?? 'unmatched'
      const status = reply.raw.headersSent ? reply.raw.statusCode : 499
      let methods = requestCounts.get(route)
      if (methods === undefined) requestCounts.set(route, methods = new Map())
      let statuses = methods.get(req.method)
      if (statuses === undefined) methods.set(req.method, statuses = new Map())
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    })
    done()
  })

  const metrics: GatewayMetrics = {
    contentType: registry.contentType,
    scrape: async () => await registry.metrics()
  }
  onMetrics?.(metrics)
  if (path === false) return
  app.get(path, { logLevel: 'warn' }, async (_req, reply) => {
    return await reply
      .header('content-type', metrics.contentType)
      .header('cache-control', 'no-store')
      .send(await metrics.scrape())
  })
}

export default fp(metrics, { name: 'mcp-gateway-metrics', fastify: '5.x', dependencies: ['mcp-gateway-context'] })
