import t from 'tap'
import { HTTP_TOKEN } from '../../lib/http-token.js'

t.test('RFC 9110 §5.6.2: a token is one or more tchar', async (t) => {
  t.ok(HTTP_TOKEN.test("!#$%&'*+-.^_`|~09azAZ"), 'every tchar')
  t.ok(HTTP_TOKEN.test('X-Api-Key'))
  for (const bad of ['', 'a b', 'a:b', 'a"b', 'a,b', 'a(b)', 'a/b', 'é', 'a\tb', 'a\r\nb', 'a@b', 'a[b]', 'a{b}', 'a=b', 'a;b', 'a?b', 'a\\b']) {
    t.notOk(HTTP_TOKEN.test(bad), JSON.stringify(bad))
  }
})
