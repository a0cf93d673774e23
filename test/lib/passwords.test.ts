// Password hashes for the users file (issue 19): Node's scrypt, parameters inside the hash, bounded when read.
import t from 'tap'
import { hashPassword, isPasswordHash, UNMATCHABLE_HASH, verifyPassword } from '../../lib/passwords.js'

t.test('a hash verifies its password and no other; two hashes of one password differ (a random salt)', async (t) => {
  const hash = await hashPassword('correct horse battery staple')
  t.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
  t.ok(isPasswordHash(hash))
  t.ok(await verifyPassword('correct horse battery staple', hash))
  t.notOk(await verifyPassword('correct horse battery stapl', hash))
  t.notOk(await verifyPassword('', hash))
  t.not(await hashPassword('correct horse battery staple'), hash)
})

t.test('a password is compared in Unicode NFC: the same text typed on another keyboard matches', async (t) => {
  const hash = await hashPassword('caf\u00e9')
  t.ok(await verifyPassword('cafe\u0301', hash))
})

t.test('the parameters are read from the hash, within bounds; anything else is no hash', async (t) => {
  const cheap = '$scrypt$ln=4,r=1,p=1$' + 'A'.repeat(22) + '$' + 'A'.repeat(43)
  t.ok(isPasswordHash(cheap), 'other parameters are read as written')
  for (const hash of ['', 'plain text', '$2b$10$abcdefghijklmnopqrstuu', '$scrypt$ln=21,r=8,p=1$' + 'A'.repeat(22) + '$' +
    'A'.repeat(43), '$scrypt$ln=15,r=33,p=1$' + 'A'.repeat(22) + '$' + 'A'.repeat(43), '$scrypt$ln=0,r=8,p=1$' +
    'A'.repeat(22) + '$' + 'A'.repeat(43), '$scrypt$ln=15,r=8,p=1$short$' + 'A'.repeat(43),
  '$scrypt$ln=15,r=8,p=1$' + 'A'.repeat(22) + '$' + 'A'.repeat(43) + ' ']) {
    t.notOk(isPasswordHash(hash), JSON.stringify(hash))
    t.notOk(await verifyPassword('anything', hash), 'and verifies nothing')
  }
  t.ok(isPasswordHash(UNMATCHABLE_HASH))
  t.notOk(await verifyPassword('', UNMATCHABLE_HASH), 'the stand-in for unknown users matches nothing')
})
