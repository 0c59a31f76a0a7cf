import { randomUUID } from 'node:crypto';
import type { SoftwareKeyStore } from '../software/software-key-store.ts';
import {
  CustomKeyStoreConnectError,
  type ConnectedKeyStore,
  type CustomKeyStoreBackend,
  type CustomKeyStoreConnectRequest,
} from '../types.ts';
import { lookup } from 'node:dns/promises';
import { XksClient, XksProxyError, type XksAddress, type XksClientOptions } from './xks-client.ts';
import { XksKeyStore } from './xks-key-store.ts';

/** How a proxy failure during a health check reads as AWS's XKS connection error codes. */
function connectionError(error: unknown): CustomKeyStoreConnectError {
  if (error instanceof XksProxyError) {
    if (error.kind === 'unreachable') {
      return new CustomKeyStoreConnectError('XKS_PROXY_NOT_REACHABLE', 'The XKS proxy could not be reached within 250 ms.');
    }
    if (error.kind === 'AuthenticationFailedException' || error.kind === 'AccessDeniedException') {
      return new CustomKeyStoreConnectError('XKS_PROXY_ACCESS_DENIED', 'The XKS proxy rejected the authentication credential.');
    }
    if (error.kind === 'InvalidUriPathException') {
      return new CustomKeyStoreConnectError('XKS_PROXY_INVALID_CONFIGURATION', 'The XKS proxy does not serve this URI path.');
    }
    return new CustomKeyStoreConnectError('XKS_PROXY_INVALID_RESPONSE', 'The XKS proxy answered the health check with an error.');
  }
  return new CustomKeyStoreConnectError('INTERNAL_ERROR', 'The XKS proxy health check failed.');
}

/**
 * Where an endpoint host is reached: the operator's static map first (`serve --xks-proxy-address
 * host=ip:port,...`: several addresses for redundant links, and ports other than 443), else every
 * address DNS gives for the host, on 443.
 */
export type XksAddressMap = ReadonlyMap<string, readonly XksAddress[]>;

async function addressesOf(hostname: string, map: XksAddressMap | undefined): Promise<XksAddress[]> {
  const mapped = map?.get(hostname.toLowerCase());
  if (mapped && mapped.length > 0) return [...mapped];
  try {
    const found = await lookup(hostname, { all: true });
    return found.map((entry) => ({ host: entry.address, port: 443 }));
  } catch {
    throw new CustomKeyStoreConnectError('XKS_PROXY_NOT_REACHABLE', `The XKS proxy host ${hostname} could not be resolved.`);
  }
}

export interface XksBackendOptions {
  /** Static addresses per endpoint host name (lower case). */
  addresses?: XksAddressMap;
  /** The KMS half of each external key (material sealed under the root key). */
  software: SoftwareKeyStore;
  region: string;
  /** Extra CA certificates (PEM) to trust for proxies' TLS certificates. */
  ca?: string | Buffer;
  clientCertificate?: XksClientOptions['clientCertificate'];
  timeoutMs?: number;
}

/**
 * EXTERNAL_KEY_STORE custom key stores. Connecting runs the proxy's health check, as AWS does at
 * CreateCustomKeyStore and ConnectCustomKeyStore.
 */
export class XksBackend implements CustomKeyStoreBackend {
  constructor(private readonly options: XksBackendOptions) {}

  private async client(request: CustomKeyStoreConnectRequest): Promise<XksClient> {
    const proxy = request.xksProxy;
    if (!proxy) throw new CustomKeyStoreConnectError('XKS_PROXY_INVALID_CONFIGURATION', 'The key store has no XKS proxy configuration.');
    const hostname = new URL(proxy.uriEndpoint).hostname;
    return new XksClient({
      hostname,
      addresses: await addressesOf(hostname, this.options.addresses),
      uriPath: proxy.uriPath,
      accessKeyId: proxy.accessKeyId,
      secretAccessKey: request.secret,
      region: this.options.region,
      ca: this.options.ca,
      clientCertificate: this.options.clientCertificate,
      timeoutMs: this.options.timeoutMs,
    });
  }

  private async health(client: XksClient, operation: string): Promise<void> {
    let health: Record<string, unknown>;
    try {
      health = await client.call('health', { requestMetadata: { kmsOperation: operation, kmsRequestId: randomUUID() } });
    } catch (error) {
      throw connectionError(error);
    }
    const fleet = Array.isArray(health.ekmFleetDetails) ? (health.ekmFleetDetails as { healthStatus?: unknown }[]) : [];
    if (!fleet.some((member) => member?.healthStatus === 'ACTIVE' || member?.healthStatus === 'DEGRADED')) {
      throw new CustomKeyStoreConnectError('XKS_PROXY_INVALID_RESPONSE', 'The XKS proxy reports no usable external key manager.');
    }
  }

  async check(request: CustomKeyStoreConnectRequest): Promise<void> {
    const client = await this.client(request);
    try {
      await this.health(client, 'CreateCustomKeyStore');
    } finally {
      client.close();
    }
  }

  async connect(request: CustomKeyStoreConnectRequest): Promise<ConnectedKeyStore> {
    const client = await this.client(request);
    try {
      await this.health(client, 'ConnectCustomKeyStore');
    } catch (error) {
      client.close();
      throw error;
    }
    return new XksKeyStore(client, this.options.software);
  }
}
