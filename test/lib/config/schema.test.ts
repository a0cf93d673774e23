// GatewayOptionsSchema (lib/config/schema.ts): what the settings table publishes for embedders.
import t from 'tap'
import { GatewayOptionsSchema } from '../../../lib/config/schema.js'

t.test('GatewayOptionsSchema: publishes defaults for documentation and embedding', async (t) => {
  const codeTtl = GatewayOptionsSchema.properties.codeTtl as unknown as Record<string, unknown>
  t.equal(codeTtl.default, 300)
  t.equal(codeTtl.maximum, 600)
  t.same(GatewayOptionsSchema.required, ['publicUrl', 'upstreamRs'])
  const properties = GatewayOptionsSchema.properties as unknown as Record<string, Record<string, unknown>>
  t.equal(properties.proxyTimeout?.default, 300000)
  t.same([properties.maxBodySize?.default, properties.maxBodySize?.minimum, properties.maxBodySize?.maximum],
    [16777216, 1024, 1073741824])
  t.equal(properties.disableGetStream?.default, false)
  t.same(properties.allowedOrigins?.default, [])
  t.same(properties.upstreamHeaders?.default, {})
  t.same(properties.forwardHeaders?.default, [])
  t.equal(properties.store?.default, 'memory')
  t.equal(properties.storePrefix?.default, 'mcp-gateway:')
  t.same([properties.tokenCacheTtl?.default, properties.tokenCacheTtl?.minimum, properties.tokenCacheTtl?.maximum],
    [5000, 0, 60000])
})
