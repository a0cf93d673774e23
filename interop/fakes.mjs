// The project's fake GitHub (authorization server) and fake MCP server in a process of their own, for the
// interop harness. They are TypeScript under test/helpers, so this child runs with the TypeScript loader tap
// uses; the harness and the gateway stay plain Node on dist/.
import { ready, serve } from '../bench/ipc.mjs'
import { startFakeGithub } from '../test/helpers/fake-github.ts'
import { startFakeMcp } from '../test/helpers/fake-mcp.ts'

// 0: GitHub OAuth App tokens that never expire; otherwise GitHub App tokens that expire after this many seconds.
const expiresIn = Number(process.env.INTEROP_UPSTREAM_EXPIRES_IN ?? '0')
const github = await startFakeGithub(expiresIn > 0 ? { mode: 'expiring', expiresIn } : {})
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })

/** A token request's grant type, form-encoded or JSON as GitHub takes both. */
function grantType (body) {
  try {
    return JSON.parse(body).grant_type
  } catch {
    return new URLSearchParams(body).get('grant_type') ?? 'authorization_code'
  }
}

serve({
  /** What reached the fakes: token requests by grant type, and MCP requests refused for their token. */
  stats: () => {
    const grants = github.requests.filter((r) => r.path.startsWith('/login/oauth/access_token')).map((r) => grantType(r.body))
    return {
      upstreamCodeExchanges: grants.filter((g) => g === 'authorization_code').length,
      upstreamRefreshes: grants.filter((g) => g === 'refresh_token').length,
      mcpRequests: mcp.requests.length,
      mcpUnauthorized: mcp.requests.filter((r) => r.status === 401).length
    }
  },
  close: async () => {
    await mcp.close()
    await github.close()
    return true
  }
})
ready({
  mcpUrl: mcp.url,
  clientId: github.clientId,
  clientSecret: github.clientSecret,
  authorizeEndpoint: github.authorizeEndpoint,
  tokenEndpoint: github.tokenEndpoint
})
