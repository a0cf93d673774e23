// The fake upstream authorization server of the bench, the abuse and the soak scripts: GitHub's OAuth App
// behaviour, reduced to what a sign-in needs. Authorize redirects straight back with a code; the token
// endpoint answers `upstreamToken`, which never expires.
import { createServer } from 'node:http'

export async function startAuthorizationServer (upstreamToken) {
  const as = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1')
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const back = new URL(url.searchParams.get('redirect_uri'))
      back.searchParams.set('code', 'bench-upstream-code')
      back.searchParams.set('state', url.searchParams.get('state') ?? '')
      res.writeHead(302, { location: back.href }).end()
      return
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ access_token: upstreamToken, token_type: 'bearer', scope: 'repo' }))
      })
      return
    }
    res.writeHead(404).end()
  })
  await new Promise((resolve) => as.listen(0, '127.0.0.1', resolve))
  return { origin: `http://127.0.0.1:${as.address().port}`, close: () => new Promise((resolve) => as.close(resolve)) }
}
