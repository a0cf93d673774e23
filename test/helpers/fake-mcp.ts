import { createHash, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'

export interface FakeMcpOptions {
  /** 'stateful': sessions (Mcp-Session-Id, GET stream, DELETE). 'stateless': a fresh server per request. */
  mode?: 'stateful' | 'stateless'
  /** Whether a bearer token is one the fake accepts (wire it to the fake GitHub: upstream tokens only). */
  isValidToken: (token: string) => boolean
  /** Headers added to every response, 401/403 included (to check the gateway drops what it must). */
  responseHeaders?: Record<string, string>
  /** The SDK's SSE keep-alive comment interval; 0 (the default here) keeps idle streams silent. */
  keepAliveMs?: number
}

export interface FakeMcpRequest {
  method: string
  /** The request target exactly as it came on the request line. */
  rawUrl: string
  /** The path without the query, as a server resolves it (dot segments removed). */
  path: string
  /** The query string with its `?`, or ''. */
  query: string
  headers: IncomingHttpHeaders
  /** The request body as received, byte for byte. */
  body: Buffer
  /** The JSON-RPC method(s) of a POST, when the body parsed. */
  rpcMethods: string[]
  /** Epoch ms the request's head arrived. */
  receivedAt: number
  /** The status the fake answered, once it did. */
  status?: number
  /** Epoch ms the response finished (all written) or the connection closed, whichever came first. */
  closedAt?: number
  /** True when the peer (the gateway) went away before the response was complete. */
  abortedByPeer?: boolean
}

export interface FakeMcp {
  origin: string
  /** origin + '/mcp' */
  url: string
  /** The fake's own protected-resource metadata URL, which its 401/403 challenges name. */
  prmUrl: string
  requests: FakeMcpRequest[]
  /** Live sessions (stateful mode). */
  readonly sessionCount: number
  /** Delay before a request is handled, ms (headers come late: the gateway's proxy timeout). */
  delayMs: number
  /** Tokens answered with 401 whatever isValidToken says. */
  rejectedTokens: Set<string>
  /** Every token seen so far is rejected from now on (as if it expired upstream). */
  rejectSeenTokens (): void
  /** A notifications/message on a session's GET stream. */
  sendServerNotification (sessionId: string, data?: string): Promise<void>
  close (): Promise<void>
}

/** The ~10 MB text the `big` tool returns: numbered lines, so a lost or reordered chunk shows. */
export function bigText (): string {
  const lines: string[] = []
  for (let i = 0; i < 330_000; i++) lines.push(`line ${String(i).padStart(7, '0')} of the big answer\n`)
  return lines.join('')
}

export const sha256 = (value: string | Buffer): string => createHash('sha256').update(value).digest('hex')

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

interface Session { transport: StreamableHTTPServerTransport, server: McpServer }

/**
 * A real MCP server (the official SDK's McpServer and Streamable HTTP transport) on 127.0.0.1, behind
 * its own bearer check, like GitHub's remote MCP server behind GitHub tokens. It serves `/mcp` and
 * everything below it (GitHub's `/mcp/x/{toolset}`), and records every request it gets.
 */
export async function startFakeMcp (options: FakeMcpOptions): Promise<FakeMcp> {
  const mode = options.mode ?? 'stateful'
  const sessions = new Map<string, Session>()
  const sockets = new Set<Socket>()
  const seen = new Set<string>()
  let big: string | undefined

  const newServer = (): McpServer => {
    const server = new McpServer({ name: 'fake-mcp', version: '1.0.0' }, { capabilities: { logging: {} } })
    server.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } },
      async ({ text }) => ({ content: [{ type: 'text', text }] }))
    server.registerTool('slow', {
      description: 'Sends `count` progress notifications, one every `intervalMs`, then returns',
      inputSchema: { count: z.number().int().min(0), intervalMs: z.number().int().min(0) }
    }, async ({ count, intervalMs }, extra) => {
      const progressToken = extra._meta?.progressToken
      for (let i = 1; i <= count; i++) {
        await sleep(intervalMs)
        if (progressToken === undefined) continue
        // The stream may be gone (the client left): keep going quietly, as a real server would.
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: i, total: count } }).catch(() => {})
      }
      return { content: [{ type: 'text', text: `done after ${count}` }] }
    })
    server.registerTool('big', { description: 'Returns about 10 MB of text' }, async () => {
      big ??= bigText()
      return { content: [{ type: 'text', text: big }] }
    })
    server.registerTool('size', { description: 'Byte length and SHA-256 of its data', inputSchema: { data: z.string() } },
      async ({ data }) => ({ content: [{ type: 'text', text: JSON.stringify({ bytes: Buffer.byteLength(data), sha256: sha256(data) }) }] }))
    // Answered at the HTTP layer with 403 before the SDK sees the call; listed so clients know it.
    server.registerTool('needs-scope', { description: 'Needs scopes the token lacks' },
      async () => ({ content: [{ type: 'text', text: 'unreachable' }] }))
    return server
  }

  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake')
    const record: FakeMcpRequest = {
      method: req.method ?? '',
      rawUrl: req.url ?? '',
      path: url.pathname,
      query: url.search,
      headers: req.headers,
      body: Buffer.alloc(0),
      rpcMethods: [],
      receivedAt: Date.now()
    }
    fake.requests.push(record)
    res.on('finish', () => { record.closedAt ??= Date.now() })
    res.on('close', () => {
      record.closedAt ??= Date.now()
      if (!res.writableFinished) record.abortedByPeer = true
    })
    const originalWriteHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      record.status = status
      return originalWriteHead(status, ...rest)
    }) as typeof res.writeHead

    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      record.body = Buffer.concat(chunks)
      handle(req, res, url, record).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(String(err))
      })
    })
  })
  http.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  const prmUrl = `${origin}/.well-known/oauth-protected-resource/mcp`

  const fake: FakeMcp = {
    origin,
    url: `${origin}/mcp`,
    prmUrl,
    requests: [],
    get sessionCount () { return sessions.size },
    delayMs: 0,
    rejectedTokens: new Set(),
    rejectSeenTokens: () => { for (const token of seen) fake.rejectedTokens.add(token) },
    sendServerNotification: async (sessionId, data = 'hello from the server') => {
      const session = sessions.get(sessionId)
      if (session === undefined) throw new Error(`no session ${sessionId}`)
      await session.server.server.notification({ method: 'notifications/message', params: { level: 'info', data } })
    },
    close: async () => {
      for (const { transport } of sessions.values()) await transport.close().catch(() => {})
      sessions.clear()
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
  }

  const send = (res: ServerResponse, status: number, headers: Record<string, string>, body: string): void => {
    res.writeHead(status, { ...options.responseHeaders, ...headers }).end(body)
  }

  async function handle (req: IncomingMessage, res: ServerResponse, url: URL, record: FakeMcpRequest): Promise<void> {
    if (fake.delayMs > 0) await sleep(fake.delayMs)
    if (res.destroyed) return
    if (url.pathname !== '/mcp' && !url.pathname.startsWith('/mcp/')) {
      send(res, 404, { 'content-type': 'text/plain' }, 'Not Found')
      return
    }

    // Its own bearer check, as GitHub's server does: a 401 naming ITS metadata, never the gateway's.
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    if (bearer !== undefined) seen.add(bearer)
    if (bearer === undefined || fake.rejectedTokens.has(bearer) || !options.isValidToken(bearer)) {
      const error = bearer === undefined ? 'invalid_request' : 'invalid_token'
      send(res, 401, {
        'www-authenticate': `Bearer error="${error}", error_description="fake MCP: bad token", resource_metadata="${prmUrl}"`,
        'content-type': 'text/plain'
      }, 'unauthorized')
      return
    }

    let parsed: unknown
    if (req.method === 'POST') {
      try {
        parsed = JSON.parse(record.body.toString('utf8'))
      } catch {
        send(res, 400, { 'content-type': 'application/json' }, JSON.stringify({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null }))
        return
      }
      type Message = { method?: unknown, params?: { name?: unknown } }
      const messages = (Array.isArray(parsed) ? parsed : [parsed]) as Message[]
      record.rpcMethods = messages.map((m) => String(m?.method))
      // GitHub's scope challenge (OAuth App tokens): 403 before the MCP layer sees the call.
      if (messages.some((m) => m?.method === 'tools/call' && m.params?.name === 'needs-scope')) {
        send(res, 403, {
          'www-authenticate': `Bearer error="insufficient_scope", scope="repo admin:org", resource_metadata="${prmUrl}", error_description="Additional scopes required: admin:org"`,
          'content-type': 'text/plain'
        }, 'forbidden')
        return
      }
    }
    for (const [name, value] of Object.entries(options.responseHeaders ?? {})) res.setHeader(name, value)

    if (mode === 'stateless') {
      const server = newServer()
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        keepAliveMs: options.keepAliveMs ?? 0
      })
      res.on('close', () => {
        transport.close().catch(() => {})
        server.close().catch(() => {})
      })
      await server.connect(transport)
      await transport.handleRequest(req, res, parsed)
      return
    }

    const sessionId = req.headers['mcp-session-id']
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId)
      if (session === undefined) {
        send(res, 404, { 'content-type': 'application/json' }, JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }))
        return
      }
      await session.transport.handleRequest(req, res, parsed)
      return
    }
    if (req.method !== 'POST') {
      send(res, 400, { 'content-type': 'application/json' }, JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' }, id: null }))
      return
    }
    const server = newServer()
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      keepAliveMs: options.keepAliveMs ?? 0,
      onsessioninitialized: (id) => { sessions.set(id, { transport, server }) },
      onsessionclosed: (id) => { sessions.delete(id) }
    })
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
    }
    await server.connect(transport)
    await transport.handleRequest(req, res, parsed)
  }

  return fake
}
