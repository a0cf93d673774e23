// Claude Code: `claude mcp add --transport http --callback-port N`, then `claude mcp login <name>`, which wants a
// terminal; `claude mcp list` health-checks every server with the stored tokens.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCommand, startCommand } from '../spawn.mjs'

export const storesTokensIn = '~/.claude/.credentials.json (mcpOAuth; the system keychain on macOS)'

/*
 * Claude Code identifies itself with a Client ID Metadata Document (CIMD) wherever the authorization server says
 * `client_id_metadata_document_supported`, as the gateway does: its client_id is the document's URL,
 * https://claude.ai/oauth/claude-code-client-metadata unless MCP_OAUTH_CLIENT_METADATA_URL names another. This
 * machine has no internet, so the gateway could not fetch claude.ai's document: a copy is served on loopback
 * (client-document.mjs, stack.mjs) with its own URL as client_id, and Claude Code is pointed at it. The fields
 * mirror the document claude.ai publishes, as of Claude Code 2.1.197 (clients.json): port-less loopback redirect
 * URIs, which match the callback on any port (RFC 8252 §7.3), and a public client. Recheck them on an upgrade.
 */
export const metadataDocument = {
  path: '/oauth/claude-code-client-metadata',
  fields: {
    client_name: 'Claude Code',
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none'
  }
}

// Its telemetry, error reports, auto-update and other traffic that is not the MCP server: off. Its metadata
// document: the local copy (above).
export const env = ({ clientMetadataUrl }) => ({
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_AUTOUPDATER: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  MCP_OAUTH_CLIENT_METADATA_URL: clientMetadataUrl
})

export async function configure (ctx) {
  const { code, output } = await runCommand(ctx.bin, ['mcp', 'add', '--transport', 'http', '--callback-port', String(ctx.callbackPort), ctx.serverName, ctx.mcpUrl], ctx.spawnOptions)
  if (code !== 0) throw new Error(`claude mcp add: exit ${code}: ${output.trim().slice(-300)}`)
}

export async function login (ctx) {
  const running = startCommand(ctx.bin, ['mcp', 'login', ctx.serverName], { ...ctx.spawnOptions, tty: true })
  await ctx.signIn(running)
  return await ctx.finish(running)
}

export function tokensStored (ctx) {
  const file = join(ctx.home, '.claude', '.credentials.json')
  if (!existsSync(file)) return false
  const servers = Object.values(JSON.parse(readFileSync(file, 'utf8')).mcpOAuth ?? {})
  return servers.some((server) => typeof server?.accessToken === 'string' && server.accessToken !== '')
}

/** `claude mcp list` per check: a new CLI each time, which connects with the stored (or refreshed) tokens. */
export async function connect (ctx) {
  return {
    async check () {
      const { code, output } = await runCommand(ctx.bin, ['mcp', 'list'], { ...ctx.spawnOptions, timeoutMs: 90_000 })
      const line = output.split('\n').find((l) => l.startsWith(`${ctx.serverName}:`)) ?? ''
      if (code !== 0 || !/[✓✔] Connected/.test(line)) throw new Error(`claude mcp list: ${line.trim() || `exit ${code}: ${output.trim().slice(-200)}`}`)
      return { called: false }
    },
    close: async () => {}
  }
}
