/**
 * What an embedding app imports: the gateway plugin (default export, and `gateway` for those who prefer
 * a name), its option types, and the error it throws for bad options.
 *
 *   import gateway from 'mcp-oauth-gateway'
 *   await app.register(gateway, { prefix: '/gw', publicUrl: 'https://host.example', upstreamRs: '…' })
 */
export { default, default as gateway } from './app.js'
export type { GatewayPluginOptions, WellKnownMode } from './app.js'
export { ConfigError, type GatewayOptions } from './lib/config.js'
export type { Store } from './lib/stores/types.js'
export type { Clock } from './lib/clock.js'
/**
 * For hosts: what the standalone server logs with: the redaction paths and request serializer (no secrets, no
 * query strings), request ids, and the controller that writes one access line per request.
 */
export { AccessLogController, REDACT_PATHS, serializeRequest, genReqId } from './lib/log.js'
