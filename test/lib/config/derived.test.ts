// What the settings table (lib/config/settings.ts) derives: the published schema (lib/config/schema.ts) and
// --help (lib/config/docs.ts).
import t from 'tap'
import { helpText } from '../../../lib/config.js'
import { GatewayOptionsSchema } from '../../../lib/config/schema.js'
import { EVERY_SETTING } from '../../helpers/config.js'

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

const ENV_ONLY = ['MCP_GATEWAY_USERNAME', 'MCP_GATEWAY_PASSWORD', 'MCP_GATEWAY_MCP_SCOPE']

t.test('helpText: lists every flag, every variable and the defaults', async (t) => {
  const help = helpText()
  for (const [flag, name] of EVERY_SETTING) {
    const line = help.split('\n').find((l) => l.trimStart().startsWith(`${flag} `))
    t.ok(line, `${flag} is listed`)
    t.match(line, name, `${flag} is listed with ${name}`)
  }
  for (const name of ENV_ONLY) t.match(help, name, `${name} is listed`)
  for (const text of ['8002', 'localhost', 'http://localhost:<port>', 'gateway_user', 'gateway_pass', '[default: mcp]',
    '300', '600', '3600', '2592000', '7776000', '10000', '-h, --help', '[default: 300000]',
    '[default: 16777216 (16 MiB)]', '[default: false]', '[default: memory]', '[default: mcp-gateway:]',
    '[default: 5000]', 'required with a redis --store', 'rediss://', '0 = no cache',
    'public URL\'s own origin always is', 'repeat the flag', '; or newlines', 'Mcp-*']) {
    t.match(help, text, `mentions ${text}`)
  }
  t.match(help, /^ {2}--disable-get-stream {2,}MCP_GATEWAY_DISABLE_GET_STREAM/m,
    'a flag without a value has no placeholder')
  t.match(help, /^ {2}--upstream-header <header> +MCP_GATEWAY_UPSTREAM_HEADERS/m)
  t.match(help, /ps/, 'says why credentials are environment-only')
  t.notMatch(help, /--password|--username|--mcp-scope/, 'no flags for environment-only settings')
})
