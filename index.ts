/** What an embedding app imports: the gateway plugin and its option types. */
export { default } from './app.js'
export type { GatewayPluginOptions } from './app.js'
export type { GatewayOptions } from './lib/config.js'
export type { Store } from './lib/stores/types.js'
export type { Clock } from './lib/clock.js'
