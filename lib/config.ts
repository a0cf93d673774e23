/**
 * The configuration's public face, for app.ts, server.ts and index.ts; the parts live in lib/config/: the settings
 * table, the schemas and docs derived from it, the value parsers, the resolution and the command line.
 */
export { loadConfig } from './config/command-line.js'
export { helpText } from './config/docs.js'
export { parseGatewayOptions } from './config/gateway.js'
export { ConfigError, type GatewayOptions, type ResolvedGatewayOptions, type ServerSettings } from './config/options.js'
