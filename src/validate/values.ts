// What a value of each kind may look like, wherever it comes from: the command line, the state
// file, or the kernel. The command line's parsers (net/names.ts, net/netns.ts) say why a value
// is refused; the state's shapes (state/schema.ts) use the same tests. Every one of these
// values ends up as a word in an `ip -batch`, `iptables-restore` or nsenter line, so none may
// hold blanks, quotes, '#', control characters or a leading '-'.

const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Network and endpoint names. */
export const isObjectName = (name: string) => OBJECT_NAME.test(name);

/**
 * Interface names brnet gives or accepts: 1-15 characters (IFNAMSIZ 16 with the NUL) from
 * A-Z a-z 0-9 _ . -, not starting with '.' or '-'. The kernel allows more, but '+' is a
 * wildcard to iptables (`-o +` is every interface) and a leading '-' reads as an option.
 */
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
export const isIfname = (name: string, maxLen = 15) => name.length <= maxLen && IFNAME.test(name);

// iproute2 splits batch lines on blanks and treats '#' as a comment.
const NS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@+:-]{0,254}$/;
const SAFE_PATH = /^[^\s'"#\\\x00-\x1f\x7f]+$/;
export const isNetnsName = (name: string) => NS_NAME.test(name) && name !== '.' && name !== '..';
export const isSafePath = (path: string) => SAFE_PATH.test(path);
export const isPid = (s: string) => /^[1-9][0-9]{0,9}$/.test(s);

/** A namespace as `--netns` takes it: a name, a path, or pid:PID. */
export function isNetnsSpec(spec: string): boolean {
  if (spec.startsWith('pid:')) return isPid(spec.slice(4));
  if (spec.includes('/')) return isSafePath(spec);
  return isNetnsName(spec);
}

/** What brnet opens for a namespace: an absolute path. */
export const isNetnsPath = (path: string) => path.startsWith('/') && isSafePath(path);

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** A MAC address as brnet writes it: six lower-case hex pairs. */
export const isMac = (mac: string) => MAC.test(mac);

// The characters of an IPv4 or IPv6 address: the state stores what ipam.ts formatted, and a
// reader without the IP library needs only to know that nothing else rides along.
const IP = /^(?:\d{1,3}(?:\.\d{1,3}){3}|(?=.*:)[0-9a-f:]+(?::\d{1,3}(?:\.\d{1,3}){3})?)$/;
export const isIpText = (ip: string) => IP.test(ip);
export const isCidrText = (cidr: string) => {
  const at = cidr.lastIndexOf('/');
  return at > 0 && isIpText(cidr.slice(0, at)) && /^\d{1,3}$/.test(cidr.slice(at + 1));
};

/** Network ids: 64 lower-case hex digits. */
export const isNetworkId = (id: string) => /^[0-9a-f]{64}$/.test(id);

/**
 * A sysctl key as brnet writes it under /proc/sys: '/'-separated (interface names may hold
 * dots), under net/ipv4, net/ipv6 or net/bridge, each part an interface-name-like word and
 * none of them '.' or '..', so that a key read back can only ever name such a file.
 */
export const isSysctlKey = (key: string) => {
  const parts = key.split('/');
  return (
    parts.length >= 3 &&
    parts.length <= 5 &&
    parts[0] === 'net' &&
    ['ipv4', 'ipv6', 'bridge'].includes(parts[1] ?? '') &&
    parts.every((p) => /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(p))
  );
};
