/**
 * The XKS proxy's HTTP(S) server. KMS reaches a proxy only over HTTPS with TLS 1.2+ and the spec's
 * cipher suites (PROTOCOL-NOTES §2.1); plain HTTP is for loopback tests and for running behind a
 * TLS-terminating load balancer. With a client CA, the server asks for and verifies a client
 * certificate (mTLS) during the handshake: a client without one never reaches the handler.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { XksAuditLog } from './audit-log.ts';
import type { XksProxyConfig } from './config.ts';
import { createXksHandler } from './handler.ts';
import type { HsmBackend } from './hsm-backend.ts';
import { XksOperations } from './operations.ts';

/** The spec's suites: two TLS 1.3 ones, and ECDHE with AES-256-GCM for TLS 1.2. */
const XKS_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
].join(':');

export interface XksProxyServerOptions {
  readonly config: XksProxyConfig;
  readonly backend: HsmBackend;
  readonly audit: XksAuditLog;
  readonly onInternalError?: (error: unknown, requestId: string) => void;
}

export interface RunningXksProxy {
  readonly url: string;
  readonly server: Server;
  /** See XksHandler.reloadKeyStores. */
  reloadKeyStores(keyStores: XksProxyConfig['keyStores']): void;
  /** Stops accepting, finishes in-flight requests. */
  close(): Promise<void>;
}

export async function startXksProxyServer(options: XksProxyServerOptions): Promise<RunningXksProxy> {
  const { config } = options;
  const operations = new XksOperations({
    backend: options.backend,
    ciphertextMetadata: config.ciphertextMetadata,
    fleetSize: config.fleetSize,
    healthCacheMs: config.healthCacheMs,
  });
  const handler = createXksHandler({
    keyStores: config.keyStores,
    region: config.region,
    operations,
    audit: options.audit,
    clientCommonName: config.tls?.clientCommonName,
    onInternalError: options.onInternalError,
  });
  const server: Server = config.tls
    ? createHttpsServer(
        {
          cert: readFileSync(config.tls.certFile),
          key: readFileSync(config.tls.keyFile),
          minVersion: 'TLSv1.2',
          ciphers: XKS_CIPHERS,
          ...(config.tls.clientCaFile !== undefined && {
            ca: readFileSync(config.tls.clientCaFile),
            requestCert: true,
            rejectUnauthorized: true,
          }),
        },
        handler,
      )
    : createHttpServer(handler);
  // KMS gives up after 250 ms; a client that holds a connection far longer is not KMS.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${config.tls ? 'https' : 'http'}://${host}:${address.port}`,
    server,
    reloadKeyStores: (keyStores) => handler.reloadKeyStores(keyStores),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
