import type { FastifyInstance } from 'fastify'
import { connect, type AddressInfo } from 'node:net'

export interface RawResponse {
  /** The status line, e.g. `HTTP/1.1 200 OK`. */
  status: string
  /** Header lines in order, names lowercased; a repeated header appears once per line. */
  headers: Array<[string, string]>
  body: string
}

/**
 * One HTTP/1.1 request written by hand on a socket to a listening app, so the request line reaches the
 * server exactly as written (absolute form, quotes, backslashes), which inject() and HTTP clients normalise.
 */
export async function rawRequest (app: FastifyInstance, method: string, target: string, headers: Record<string, string>, body = ''): Promise<RawResponse> {
  const { port } = app.server.address() as AddressInfo
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      const all = { host: 'localhost:8002', ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' }
      const lines = Object.entries(all).map(([name, value]) => `${name}: ${value}`)
      socket.write(`${method} ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`)
    })
    let reply = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { reply += chunk })
    socket.on('error', reject)
    socket.on('close', () => { resolve(reply) })
  })
  const end = text.indexOf('\r\n\r\n')
  const [status = '', ...lines] = text.slice(0, end).split('\r\n')
  const parsed = lines.map((line): [string, string] => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()])
  return { status, headers: parsed, body: text.slice(end + 4) }
}

/** Every value of header `name` (lowercase) in a raw response. */
export const headerValues = (res: RawResponse, name: string): string[] =>
  res.headers.filter(([n]) => n === name).map(([, v]) => v)
