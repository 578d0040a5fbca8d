// How addresses are told apart, and written next to a port or as a published binding. Dependency-free on purpose: read-only
// commands (`ls`, `inspect`) use it and must not load the IP-parsing library.
import type { Port } from '../state/schema.ts';

export type Family = 4 | 6;

export const ipFamily = (ip: string): Family => (ip.includes(':') ? 6 : 4);
export const isUnspecified = (ip: string) => ip === '0.0.0.0' || ip === '::';

/** `1.2.3.4:80` / `[::1]:80`: how an address and port are written together. */
export function hostPortText(ip: string, port: number): string {
  return ipFamily(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** `0.0.0.0:8080->80/tcp`: one published binding, as lists and messages show it. */
export function bindingText(p: Port): string {
  return `${hostPortText(p.hostIp, p.hostPort)}->${p.containerPort}/${p.proto}`;
}
