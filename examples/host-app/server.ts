/**
 * Starts the example host app. Configuration is the host's business: these variables are this example's
 * choice, not the gateway's `MCP_GATEWAY_*` set (which only its own server reads).
 *
 *   GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET  a GitHub OAuth App whose callback URL is <PUBLIC_URL>/gw/upstream/callback
 *   GATEWAY_SECRET                          32+ characters, so that tokens survive a restart (optional)
 *   GATEWAY_USERNAME, GATEWAY_PASSWORD      the gateway's sign-in (the published defaults otherwise)
 *   PORT, HOST, PUBLIC_URL, LOG_LEVEL       default 3000, 127.0.0.1, http://localhost:<PORT>, info
 */
import { build } from './app.js'

/** A variable's value; unset or empty is `fallback`. */
function setting (name: string): string | undefined
function setting (name: string, fallback: string): string
function setting (name: string, fallback?: string): string | undefined {
  const value = process.env[name]
  return value === undefined || value === '' ? fallback : value
}

// Only the settings that are there: an absent option takes the gateway's default.
const present = (entries: Record<string, string | undefined>): Record<string, string> =>
  Object.fromEntries(Object.entries(entries).filter((entry): entry is [string, string] => entry[1] !== undefined))

const port = Number(setting('PORT', '3000'))
const app = await build({
  server: { logger: { level: setting('LOG_LEVEL', 'info') } },
  gateway: {
    publicUrl: setting('PUBLIC_URL', `http://localhost:${port}`),
    // GitHub's remote MCP server, with a GitHub OAuth App (GitHub has no dynamic client registration).
    upstreamRs: 'https://api.githubcopilot.com/mcp',
    upstreamAuthorizeEndpoint: 'https://github.com/login/oauth/authorize',
    upstreamTokenEndpoint: 'https://github.com/login/oauth/access_token',
    upstreamScopes: ['repo', 'read:org'],
    upstreamClientId: setting('GITHUB_CLIENT_ID', ''),
    upstreamClientSecret: setting('GITHUB_CLIENT_SECRET', ''),
    ...present({
      secret: setting('GATEWAY_SECRET'),
      username: setting('GATEWAY_USERNAME'),
      password: setting('GATEWAY_PASSWORD')
    })
  }
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
await app.listen({ port, host: setting('HOST', '127.0.0.1') })
