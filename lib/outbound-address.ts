import { BlockList, isIP } from 'node:net'

/*
 * Which addresses a fetch on a client's word may connect to. A Client ID Metadata Document's URL comes from
 * whoever sends /authorize, so fetching it must not reach the gateway's own host, its network, or cloud
 * metadata services (SSRF): only globally routable unicast addresses pass. The lists are the IANA special-purpose
 * registries (RFC 6890 and its updates), plus multicast and the reserved blocks.
 */

const SPECIAL_IPV4: ReadonlyArray<[string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // shared address space, carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, where cloud metadata services answer
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4] // reserved, and the limited broadcast address
]

const SPECIAL_IPV6: ReadonlyArray<[string, number]> = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments, Teredo among them
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: an IPv4 address of any kind inside
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed by some stacks)
  ['ff00::', 8] // multicast
]

// NAT64 (RFC 6052): a public IPv4 address behind DNS64 on an IPv6-only network, judged by the address inside.
const NAT64_PREFIX = '64:ff9b::'

const special = new BlockList()
for (const [network, prefix] of SPECIAL_IPV4) special.addSubnet(network, prefix, 'ipv4')
for (const [network, prefix] of SPECIAL_IPV6) special.addSubnet(network, prefix, 'ipv6')
const nat64 = new BlockList()
nat64.addSubnet(NAT64_PREFIX, 96, 'ipv6')

/**
 * True when `address` (an IP address as DNS returns it) is globally routable unicast: neither loopback, private,
 * link-local, shared, documentation, multicast nor reserved. IPv4-mapped IPv6 addresses are judged as the IPv4
 * address they carry. Anything that is not an IP address is false.
 */
export function isPublicAddress (address: string): boolean {
  const family = isIP(address)
  if (family === 4) return !special.check(address, 'ipv4')
  if (family !== 6) return false
  if (nat64.check(address, 'ipv6')) return isPublicAddress(embeddedIpv4(address))
  return !special.check(address, 'ipv6')
}

/** The IPv4 address in the last 32 bits of an IPv6 address (NAT64), in dotted form. */
function embeddedIpv4 (address: string): string {
  const withoutZone = address.split('%', 1)[0] as string
  const tail = withoutZone.slice(withoutZone.lastIndexOf(':') + 1)
  if (tail.includes('.')) return tail
  const groups = expandIpv6(withoutZone)
  const high = groups[6] as number
  const low = groups[7] as number
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.')
}

/** The eight 16-bit groups of an IPv6 address without an embedded dotted IPv4 part. */
function expandIpv6 (address: string): number[] {
  const [head, tail] = address.split('::') as [string, string?]
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map((group) => parseInt(group, 16))
  const left = parse(head)
  const right = tail === undefined ? [] : parse(tail)
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
}
