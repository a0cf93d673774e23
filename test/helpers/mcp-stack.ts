import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { GatewayPluginOptions } from '../../app.js'
import type { FakeGithub, FakeGithubOptions } from './fake-github.js'
import { startFakeMcp, type FakeMcp, type FakeMcpOptions } from './fake-mcp.js'
import { authorizeFully, type Browser, buildGateway, exchangeCode, registerClient, type RegisteredClient, type TestGateway } from './gateway.js'
import type { Teardown } from './teardown.js'

export interface McpStack extends TestGateway {
  mcp: FakeMcp
  client: RegisteredClient
  /** A fresh grant: its gateway access and refresh tokens. */
  login: (browser?: Browser) => Promise<{ access: string, refresh: string }>
  /** A fresh grant's gateway access token. */
  token: () => Promise<string>
}

/**
 * The gateway (buildGateway) in front of a real MCP server (the SDK's, fake-mcp.ts) that accepts only
 * the fake GitHub's tokens, with one registered client.
 */
export async function mcpStack (
  t: Teardown,
  overrides: Partial<GatewayPluginOptions> = {},
  fake: Partial<FakeMcpOptions> = {},
  github: FakeGithubOptions = {}
): Promise<McpStack> {
  // The fake MCP server needs the fake GitHub, which buildGateway starts after it: a late reference.
  const ref: { github?: FakeGithub } = {}
  const mcp = await startFakeMcp({ isValidToken: (token) => ref.github?.isValidAccessToken(token) ?? false, ...fake })
  t.teardown(() => mcp.close())
  const built = await buildGateway(t, { upstreamRs: mcp.url, ...overrides }, github)
  ref.github = built.github
  const client = await registerClient(built.app)
  const login = async (browser?: Browser): Promise<{ access: string, refresh: string }> => {
    const flow = await authorizeFully(built.app, client, {}, browser)
    const res = await exchangeCode(built.app, client, flow.code, flow.verifier)
    if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`)
    const body = res.json() as { access_token: string, refresh_token: string }
    return { access: body.access_token, refresh: body.refresh_token }
  }
  return { ...built, mcp, client, login, token: async () => (await login()).access }
}

/** A JSON-RPC tools/call of the fake MCP server's echo tool. */
export const echo = (id: number, text: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text } } })

/** POST /mcp with a gateway access token, as an MCP client of 2025-06-18 sends it. */
export async function callMcp (app: FastifyInstance, token: string, body: unknown): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
    payload: body as Record<string, unknown>
  })
}

/** RFC 6750 §3 auth-params of a Bearer challenge. */
export function challengeParams (header: unknown): Record<string, string> {
  const params: Record<string, string> = {}
  for (const match of String(header).matchAll(/([a-z_]+)="([^"]*)"/g)) params[match[1] as string] = match[2] as string
  return params
}
