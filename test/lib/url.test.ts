import t from 'tap'
import { originOf, withoutPathTrailingSlashes, withoutTrailingSlashes } from '../../lib/url.js'

t.test('trailing slashes: every one goes, so /gw, /gw/ and /gw// name one mount', async (t) => {
  t.equal(withoutTrailingSlashes('/gw//'), '/gw')
  t.equal(withoutTrailingSlashes('/gw'), '/gw')
  t.equal(withoutTrailingSlashes('/'), '')
  t.equal(withoutTrailingSlashes('https://as.example/'), 'https://as.example')
  t.equal(withoutTrailingSlashes('/a/b/'), '/a/b', 'inner slashes stay')
})

t.test('trailing slashes of a URL with a query: the path\'s go, the query stays as written', async (t) => {
  t.equal(withoutPathTrailingSlashes('https://x/mcp/?a=1/'), 'https://x/mcp?a=1/')
  t.equal(withoutPathTrailingSlashes('https://x/mcp//'), 'https://x/mcp')
  t.equal(withoutPathTrailingSlashes('https://x/mcp?'), 'https://x/mcp?')
})

t.test('origin: scheme, host and port only, serialized by WHATWG URL', async (t) => {
  t.equal(originOf('https://Gw.Example:443/mcp?key=secret'), 'https://gw.example')
  t.equal(originOf('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080')
})
