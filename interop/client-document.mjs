// A client's Client ID Metadata Document (CIMD), served over HTTPS on loopback for the phase's gateway to fetch:
// a client that names its document's URL as its client_id gets the real CIMD path without the internet. The
// certificate is the test CA's for localhost (test/helpers/tls); the gateway trusts that CA through
// NODE_EXTRA_CA_CERTS and may fetch from loopback with --cimd-allow-private (stack.mjs).
import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { fileURLToPath } from 'node:url'

const TLS = new URL('../test/helpers/tls/', import.meta.url)
/** The CA that signed the server's certificate, for the gateway's NODE_EXTRA_CA_CERTS. */
export const CA_FILE = fileURLToPath(new URL('ca.pem', TLS))

/**
 * Serves `{ client_id: <its own URL>, ...fields }` at `path` on https://localhost:<port>. Returns its `url`, how
 * many times it was fetched (`fetches()`), and `close()`.
 */
export async function serveClientDocument ({ path, fields }) {
  let fetches = 0
  const options = { key: readFileSync(new URL('localhost-key.pem', TLS)), cert: readFileSync(new URL('localhost.pem', TLS)) }
  const servers = [createServer(options, handler)]
  await listen(servers[0], 0, '127.0.0.1')
  const { port } = servers[0].address()
  const url = `https://localhost:${port}${path}`
  const body = JSON.stringify({ client_id: url, ...fields })
  // localhost may resolve to ::1 first elsewhere: the same port there too, where loopback IPv6 exists.
  const v6 = createServer(options, handler)
  if (await listen(v6, port, '::1').then(() => true, () => false)) servers.push(v6)
  return {
    url,
    fetches: () => fetches,
    async close () {
      await Promise.all(servers.map((server) => new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })))
    }
  }

  function handler (req, res) {
    if (req.method !== 'GET' || req.url !== path) {
      res.writeHead(404).end()
      return
    }
    fetches++
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  }
}

function listen (server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}
