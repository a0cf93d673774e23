import t from 'tap'
import { isScopeSubset, parseScopeParam, parseScopes, scopeUnion, splitScopeList } from '../../lib/scopes.js'

t.test('upstream and operator scope lists: commas or whitespace separate, duplicates kept by the split', async (t) => {
  t.same(splitScopeList(' repo, gist ,repo '), ['repo', 'gist', 'repo'])
  t.same(splitScopeList(''), [])
})

t.test('parseScopes: a list without duplicates from a string or an array', async (t) => {
  t.same(parseScopes('repo,gist'), ['repo', 'gist'], 'GitHub replies comma-separated')
  t.same(parseScopes('repo gist  user'), ['repo', 'gist', 'user'])
  t.same(parseScopes(' repo, gist ,repo '), ['repo', 'gist'], 'mixed separators, duplicates dropped')
  t.same(parseScopes(['repo', 'gist,user', 7, null, '']), ['repo', 'gist', 'user'])
  t.same(parseScopes(undefined), [])
  t.same(parseScopes(42), [])
})

t.test('RFC 6749 §3.3: the scope parameter is space-delimited, so a comma stays inside a scope', async (t) => {
  t.same(parseScopeParam('mcp  read'), ['mcp', 'read'])
  t.same(parseScopeParam('a,b'), ['a,b'])
  t.same(parseScopeParam(''), [])
})

t.test('scopeUnion keeps the first list\'s order and adds what it lacks once', async (t) => {
  t.same(scopeUnion(['repo', 'gist'], ['gist', 'user', 'user']), ['repo', 'gist', 'user'])
  t.same(scopeUnion([], []), [])
})

t.test('isScopeSubset: narrowing is allowed, widening is not', async (t) => {
  t.ok(isScopeSubset(['mcp'], ['mcp', 'read']))
  t.ok(isScopeSubset([], ['mcp']), 'asking for nothing')
  t.notOk(isScopeSubset(['mcp', 'write'], ['mcp']))
  t.notOk(isScopeSubset(['mcp'], []))
})
