/**
 * Parsing of `strongroom serve` settings that become options of the instance: where external key
 * stores' proxies are reached, and the request-rate quotas (checked at start by config.ts).
 */
import { readFile } from 'node:fs/promises';
import type { XksAddress } from '../keystores/xks/xks-client.ts';
import { AWS_DEFAULT_QUOTAS, type QuotaClass, type QuotaLimits } from '../service/quotas.ts';
import type { ServeOptions } from './serve.ts';

/** `--xks-proxy-address host=ip:port[,ip:port]` entries as the XKS backend's address map. */
export function parseXksProxyAddresses(entries: readonly string[]): Map<string, XksAddress[]> {
  const map = new Map<string, XksAddress[]>();
  for (const entry of entries) {
    const match = /^([A-Za-z0-9.-]+)=(.+)$/.exec(entry);
    if (!match) throw new Error(`--xks-proxy-address ${entry}: expected host=ip:port[,ip:port]`);
    const addresses = match[2].split(',').map((address) => {
      const parts = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address.trim());
      const port = Number(parts?.[2]);
      if (!parts || port < 1 || port > 65535) throw new Error(`--xks-proxy-address ${entry}: ${address} is not ip:port`);
      return { host: parts[1], port };
    });
    map.set(match[1].toLowerCase(), [...(map.get(match[1].toLowerCase()) ?? []), ...addresses]);
  }
  return map;
}

export async function xksOptions(options: Pick<ServeOptions, 'xksProxyCa' | 'xksProxyAddresses'>) {
  return {
    ...(options.xksProxyCa ? { ca: await readFile(options.xksProxyCa) } : {}),
    ...(options.xksProxyAddresses?.length ? { addresses: parseXksProxyAddresses(options.xksProxyAddresses) } : {}),
  };
}

/** `--quota CLASS=RATE` entries (requests per second for the installation); `aws`: AWS's defaults. */
export function parseQuotas(entries: readonly string[]): QuotaLimits {
  const limits: QuotaLimits = {};
  for (const entry of entries) {
    if (entry === 'aws') {
      Object.assign(limits, AWS_DEFAULT_QUOTAS);
      continue;
    }
    const match = /^(symmetric|rsa|ecc|control)=(\d+(?:\.\d+)?)$/.exec(entry);
    const rate = Number(match?.[2]);
    if (!match || !(rate > 0)) {
      throw new Error(`--quota ${entry}: expected aws, or CLASS=RATE with CLASS one of symmetric, rsa, ecc, control and RATE > 0`);
    }
    limits[match[1] as QuotaClass] = rate;
  }
  return limits;
}

/**
 * The installation's quotas, and each server process's equal share of them, which only SQLite
 * uses: on PostgreSQL every process draws on buckets shared in the database (service/quotas.ts).
 */
export function quotaOptions(options: Pick<ServeOptions, 'quotas' | 'workers'>) {
  return { limits: parseQuotas(options.quotas ?? []), share: 1 / Math.max(1, options.workers) };
}
