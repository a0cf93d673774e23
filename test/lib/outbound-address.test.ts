// isPublicAddress (lib/outbound-address.ts): the SSRF guard of fetches on a client's word (CIMD, issue 18:
// "the resolved address must not be loopback, private, link-local or otherwise special").
import t from 'tap'
import { isPublicAddress } from '../../lib/outbound-address.js'

t.test('IPv4: globally routable unicast passes, every special-purpose block is refused', async (t) => {
  for (const address of ['8.8.8.8', '1.1.1.1', '140.82.112.3', '172.15.255.255', '172.32.0.0', '100.63.255.255',
    '100.128.0.0', '198.17.255.255', '198.20.0.0', '223.255.255.255']) {
    t.ok(isPublicAddress(address), `${address} is public`)
  }
  for (const address of ['0.0.0.0', '0.1.2.3', '10.0.0.1', '100.64.0.1', '127.0.0.1', '127.255.255.254',
    '169.254.169.254', '172.16.0.1', '172.31.255.255', '192.0.0.8', '192.0.2.1', '192.88.99.1', '192.168.1.1',
    '198.18.0.1', '198.19.255.255', '198.51.100.7', '203.0.113.9', '224.0.0.1', '239.255.255.250', '240.0.0.1',
    '255.255.255.255']) {
    t.notOk(isPublicAddress(address), `${address} is refused`)
  }
})

t.test('IPv6: global unicast passes; loopback, unique local, link-local, documentation and the rest are refused',
  async (t) => {
    for (const address of ['2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:81a::200e']) {
      t.ok(isPublicAddress(address), `${address} is public`)
    }
    for (const address of ['::', '::1', '100::1', '2001::1', '2001:db8::1', '2002:7f00:1::1', 'fc00::1',
      'fd12:3456::1', 'fe80::1', 'FE80::1', 'fe80::1%eth0', 'fec0::1', 'ff02::1']) {
      t.notOk(isPublicAddress(address), `${address} is refused`)
    }
  })

t.test('an IPv4 address inside IPv6 is judged as itself: mapped and NAT64', async (t) => {
  t.notOk(isPublicAddress('::ffff:127.0.0.1'), 'IPv4-mapped loopback')
  t.notOk(isPublicAddress('::ffff:a9fe:a9fe'), 'IPv4-mapped metadata address, in hex')
  t.ok(isPublicAddress('::ffff:8.8.8.8'), 'IPv4-mapped public address')
  t.ok(isPublicAddress('64:ff9b::808:808'), 'NAT64 of a public address')
  t.ok(isPublicAddress('64:ff9b::8.8.8.8'), 'NAT64 written with a dotted tail')
  t.ok(isPublicAddress('64:ff9b:0:0:0:0:808:808'), 'NAT64 written in full')
  t.notOk(isPublicAddress('64:ff9b::7f00:1'), 'NAT64 of loopback')
  t.notOk(isPublicAddress('64:ff9b::'), 'NAT64 of 0.0.0.0')
  t.notOk(isPublicAddress('64:ff9b::a00:1'), 'NAT64 of a private address')
})

t.test('what is not an IP address is never public', async (t) => {
  for (const value of ['', 'localhost', 'example.com', '127.1', '1.2.3.4.5', '::ffff:999.0.0.1', 'fe80::1::2']) {
    t.notOk(isPublicAddress(value), JSON.stringify(value))
  }
})
