// Who may pass screen 1 (issue 19): the one configured account, or a users file re-read when it changes.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { parseUsersFile, singleAccount, usersFileAccounts, UsersFileError, type UsersFileLog } from '../../lib/accounts.js'
import { hashPassword } from '../../lib/passwords.js'
import { tempFile } from '../helpers/temp-file.js'

const ALICE = await hashPassword('alice password')
const BOB = await hashPassword('bob password')

interface Logged { level: 'info' | 'error', details: object, message: string }
const recorder = (): { log: UsersFileLog, lines: Logged[] } => {
  const lines: Logged[] = []
  return {
    lines,
    log: {
      info: (details, message) => { lines.push({ level: 'info', details, message }) },
      error: (details, message) => { lines.push({ level: 'error', details, message }) }
    }
  }
}

/** Waits until `check` holds, polling, at most `ms`. */
async function until (check: () => boolean, ms = 5000): Promise<boolean> {
  for (const start = Date.now(); Date.now() - start < ms; await sleep(20)) if (check()) return true
  return check()
}

t.test('the one account: its name and password, both compared', async (t) => {
  const accounts = singleAccount('gateway_user', 'secret password')
  t.ok(await accounts.verify('gateway_user', 'secret password'))
  t.notOk(await accounts.verify('gateway_user', 'wrong'))
  t.notOk(await accounts.verify('someone', 'secret password'))
  t.ok(accounts.knows('gateway_user'))
  t.notOk(accounts.knows('someone'))
  accounts.close()
})

t.test('a users file: name:hash lines, blank lines and # comments skipped', async (t) => {
  const users = parseUsersFile(`# the team\nalice:${ALICE}\n\n  bob:${BOB}  \r\n`, 'users')
  t.same([...users.keys()], ['alice', 'bob'])
})

t.test('a malformed users file names the file and line, and never a hash', async (t) => {
  for (const [text, message] of [
    ['', 'users lists no users'],
    ['# only a comment\n', 'users lists no users'],
    [`alice:${ALICE}\nbob\n`, 'users line 2: expected name:hash'],
    [`:${ALICE}\n`, 'users line 1: expected name:hash'],
    [`al ice:${ALICE}\n`, 'users line 1: expected name:hash'],
    ['alice:plain-text-password\n', 'users line 1: the hash of alice is not one `mcp-oauth-gateway hash-password` makes'],
    [`alice:${ALICE}\nalice:${BOB}\n`, 'users line 2: alice is listed twice']
  ] as const) {
    t.throws(() => parseUsersFile(text, 'users'), { name: 'UsersFileError', message }, JSON.stringify(text))
  }
  const err = t.throws(() => parseUsersFile('alice:plain-text-password\n', 'users')) as Error
  t.notMatch(err.message, 'plain-text-password')
})

t.test('the users file\'s accounts; an unreadable file is an error at once', async (t) => {
  const path = tempFile(t, `alice:${ALICE}\nbob:${BOB}\n`)
  const accounts = usersFileAccounts(path, recorder().log)
  t.teardown(() => { accounts.close() })
  t.ok(await accounts.verify('alice', 'alice password'))
  t.ok(await accounts.verify('bob', 'bob password'))
  t.notOk(await accounts.verify('alice', 'bob password'), 'each their own password')
  t.notOk(await accounts.verify('carol', 'alice password'), 'a name not listed')
  t.same([accounts.knows('alice'), accounts.knows('carol')], [true, false])
  t.throws(() => usersFileAccounts(join(path, 'missing'), recorder().log),
    { name: 'UsersFileError', message: /cannot be read \(ENOTDIR|ENOENT\)/ })
  t.ok(new UsersFileError('x') instanceof Error)
})

t.test('a changed file is read again; a broken change is logged and the accounts read before stay', async (t) => {
  const path = tempFile(t, `alice:${ALICE}\n`)
  const { log, lines } = recorder()
  const accounts = usersFileAccounts(path, log, 20)
  t.teardown(() => { accounts.close() })
  t.notOk(accounts.knows('bob'))
  writeFileSync(path, `alice:${ALICE}\nbob:${BOB}\n`)
  t.ok(await until(() => accounts.knows('bob')), 'bob was added without a restart')
  t.ok(await accounts.verify('bob', 'bob password'))
  t.match(lines.at(-1), { level: 'info', message: 'users file reloaded', details: { users: 2 } })

  writeFileSync(path, `alice:${ALICE}\nbob:half-writ`)
  t.ok(await until(() => lines.some((l) => l.level === 'error')), 'the broken file was noticed')
  t.match(lines.at(-1), { level: 'error', details: { detail: /line 2: the hash of bob/ } })
  t.ok(await accounts.verify('bob', 'bob password'), 'the last good accounts stay in force')

  writeFileSync(path, `bob:${BOB}\n`)
  t.ok(await until(() => !accounts.knows('alice')), 'alice was removed')
  t.notOk(await accounts.verify('alice', 'alice password'))
})
