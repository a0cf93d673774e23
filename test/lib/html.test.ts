import t from 'tap'
import { escapeHtml, html, PAGE_HEADERS, renderPage, SafeHtml } from '../../lib/html.js'

t.test('escapeHtml escapes every character that can open markup or close an attribute', async (t) => {
  t.equal(escapeHtml('&<>"\'`'), '&amp;&lt;&gt;&quot;&#39;&#96;')
  t.equal(escapeHtml('<script>alert("x")</script>'), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;')
  t.equal(escapeHtml('"><img src=x onerror=alert(1)>'), '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;')
  t.equal(escapeHtml('plain text, ünïcödé ✓'), 'plain text, ünïcödé ✓', 'leaves other characters alone')
  t.equal(escapeHtml('&amp;'), '&amp;amp;', 'a string is text: an entity in it is escaped again')
  t.equal(escapeHtml(''), '')
})

t.test('html escapes interpolations and keeps the literal parts', async (t) => {
  const v = '<b onclick="x">\'`&'
  const out = html`<p title="${v}">${v}</p>`
  t.ok(out instanceof SafeHtml)
  t.equal(out.value, '<p title="&lt;b onclick=&quot;x&quot;&gt;&#39;&#96;&amp;">&lt;b onclick=&quot;x&quot;&gt;&#39;&#96;&amp;</p>')
  t.equal(html`no values`.value, 'no values')
  t.equal(html`${'a'}${'b'}`.value, 'ab', 'adjacent interpolations')
  t.equal(html`line\nbreak`.value, 'line\nbreak', 'escape sequences in the literal parts are cooked')
})

t.test('SafeHtml is inserted as is, so nesting does not double-escape', async (t) => {
  const inner = html`<b>${'<i>'}</b>`
  t.equal(html`<p>${inner}</p>`.value, '<p><b>&lt;i&gt;</b></p>')
  t.equal(html`${html`${html`${'&'}`}`}`.value, '&amp;', 'three levels deep, escaped once')
  t.equal(html`<div>${new SafeHtml('<br>')}</div>`.value, '<div><br></div>')
  t.equal(new SafeHtml('<x>').value, '<x>')
})

t.test('arrays are joined, each element escaped unless SafeHtml', async (t) => {
  const items = ['<a>', '&']
  t.equal(html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`.value, '<ul><li>&lt;a&gt;</li><li>&amp;</li></ul>')
  t.equal(html`${['<x>', html`<y>`, null, false, undefined, ['<z>']]}`.value, '&lt;x&gt;<y>&lt;z&gt;',
    'mixed elements, nested arrays, empty values dropped')
  t.equal(html`[${[]}]`.value, '[]', 'an empty array renders nothing')
  t.equal(html`${['a', 'b']}`.value, 'ab', 'no separator is added')
})

t.test('null, undefined and false render as nothing; other values as escaped text', async (t) => {
  t.equal(html`[${null}|${undefined}|${false}]`.value, '[||]')
  t.equal(html`${false && html`<b>`}`.value, '', 'the cond && html`` idiom')
  t.equal(html`${0}|${true}|${''}|${42n}`.value, '0|true||42', 'falsy values other than false still render')
  t.equal(html`${{ toString: () => '<o>' }}`.value, '&lt;o&gt;', 'objects are stringified, then escaped')
})

t.test('PAGE_HEADERS', async (t) => {
  t.ok(Object.isFrozen(PAGE_HEADERS))
  t.equal(PAGE_HEADERS['content-type'], 'text/html; charset=utf-8')
  t.equal(PAGE_HEADERS['cache-control'], 'no-store')
  t.equal(PAGE_HEADERS['x-frame-options'], 'DENY')
  t.equal(PAGE_HEADERS['referrer-policy'], 'no-referrer')
  t.equal(PAGE_HEADERS['x-content-type-options'], 'nosniff')
  const csp = PAGE_HEADERS['content-security-policy'] ?? ''
  const directives = new Map(csp.split(';').map((d) => {
    const [name = '', ...values] = d.trim().split(/\s+/)
    return [name, values.join(' ')]
  }))
  t.equal(directives.get('frame-ancestors'), "'none'", 'no framing: consent cannot be clickjacked')
  t.equal(directives.get('default-src'), "'none'", 'no scripts, no external resources')
  t.equal(directives.get('style-src'), "'unsafe-inline'")
  t.equal(directives.get('base-uri'), "'none'")
  t.equal(directives.get('img-src'), "'self' data:")
  t.notOk(directives.has('script-src'), 'scripts fall back to none')
  t.notOk(directives.has('form-action'), 'form-action would block the redirects that follow our POSTs in Chromium')
})

t.test('renderPage builds a complete, self-contained document', async (t) => {
  const page = renderPage({ title: 'Hello & <bye>', body: html`<h1>${'<Hi>'}</h1>` })
  t.match(page, /^<!doctype html>\n<html lang="en">/)
  t.match(page, '<meta charset="utf-8">')
  t.match(page, '<meta name="viewport" content="width=device-width, initial-scale=1">')
  t.match(page, '<title>Hello &amp; &lt;bye&gt;</title>', 'the title is escaped')
  t.match(page, '<main>\n<h1>&lt;Hi&gt;</h1>\n</main>', 'the body is inserted as is, inside main')
  t.match(page, /<style>[^<]*:focus-visible[^<]*<\/style>/, 'inline styles with visible focus')
  t.match(page, 'prefers-color-scheme:dark')
  t.match(page, '@media (max-width:30rem)', 'tighter margins on a phone')
  t.notMatch(page, /<script|<link rel="stylesheet"|src=|url\(|@import|https?:\/\//i, 'no scripts, no external resources')
  t.match(page, /<\/html>\n$/)
  t.match(renderPage({ title: 'x', body: html``, lang: 'fr"><x' }), '<html lang="fr&quot;&gt;&lt;x">', 'lang is escaped')
})
