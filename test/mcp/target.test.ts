import t from 'tap'
import { belowMount, quotablePath, subTarget } from '../../routes/mcp/target.js'

/* Request targets as the proxy reads them (issue 15, findings 6 and 7), on their own. */

t.test('issue 15 finding 6: belowMount reads the path of origin- and absolute-form targets alike', async (t) => {
  const cases: Array<[string, string, string | undefined]> = [
    ['/mcp', '/mcp', ''],
    ['/mcp?x=1', '/mcp', '?x=1'],
    ['/mcp/x/repos?foo=1', '/mcp', '/x/repos?foo=1'],
    ['https://x/mcp', '/mcp', ''],
    ['HTTP://x:8080/mcp/x?q', '/mcp', '/x?q'],
    ['https://user@x/mcp?a=/b', '/mcp', '?a=/b'],
    ['https://X-admin/gw/mcp/x', '/gw/mcp', '/x'],
    ['http://a/gw/mcp', '/gw/mcp', ''],
    ['https://x?a=/mcp', '/mcp', undefined],
    ['https://x/mcpx', '/mcp', undefined],
    ['/mcpx', '/mcp', undefined],
    ['https://x/admin/mcp', '/mcp', undefined],
    ['https://x', '/mcp', undefined],
    ['x/mcp', '/mcp', undefined],
    ['*', '/mcp', undefined]
  ]
  for (const [target, mount, expected] of cases) t.equal(belowMount(target, mount), expected, `${target} under ${mount}`)
})

t.test('issue 15 finding 7: quotablePath encodes what could end or escape a quoted header value', async (t) => {
  t.equal(quotablePath(''), '')
  t.equal(quotablePath("/x/repos/a-b_c.d~e!$&'()*+,;=:@"), "/x/repos/a-b_c.d~e!$&'()*+,;=:@", 'pchar and / pass as they are')
  t.equal(quotablePath('/x%22y/a%20b'), '/x%22y/a%20b', 'percent-encoded octets stay: the same resource')
  t.equal(quotablePath('/a",resource_metadata="https://evil.example/x'), '/a%22,resource_metadata=%22https://evil.example/x')
  t.equal(quotablePath('/a\\b'), '/a%5Cb')
  t.equal(quotablePath('/a"%41'), '/a%22%41', 'octets next to what must be encoded stay too')
  t.equal(quotablePath('/100%/%zz/%4'), '/100%25/%25zz/%254', 'a % that starts no octet is encoded')
  t.equal(quotablePath('/a b\t\r\n'), '/a%20b%09%0D%0A')
  t.equal(quotablePath('/\u00c3\u00a9'), '/%C3%A9', 'latin1 characters from Node\'s parser are bytes: é as sent in UTF-8')
  t.equal(quotablePath('/\u20ac'), '/%E2%82%AC', 'anything wider is UTF-8 encoded')
})

t.test('subTarget splits what follows the mount into sub-path and query, once for the whole request', async (t) => {
  t.same(subTarget('/mcp', '/mcp'), { path: '', query: '' })
  t.same(subTarget('/mcp/x/repos?a=1&b=?', '/mcp'), { path: '/x/repos', query: 'a=1&b=?' })
  t.same(subTarget('https://x/mcp?q', '/mcp'), { path: '', query: 'q' })
  t.equal(subTarget('/mcpx', '/mcp'), undefined)
})
