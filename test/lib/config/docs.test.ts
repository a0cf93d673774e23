// helpText (lib/config/docs.ts): --help names every flag, every variable and the defaults.
import t from 'tap'
import { helpText } from '../../../lib/config.js'
import { EVERY_SETTING } from '../../helpers/config.js'

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
