// How addresses are told apart and written next to a port. Dependency-free on purpose: read-only
// commands (`ls`, `inspect`) use it and must not load the IP-parsing library.
export const ipFamily = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);
export const isUnspecified = (ip: string) => ip === '0.0.0.0' || ip === '::';

/** `1.2.3.4:80` / `[::1]:80`: how an address and port are written together. */
export function hostPortText(ip: string, port: number): string {
  return ipFamily(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}
