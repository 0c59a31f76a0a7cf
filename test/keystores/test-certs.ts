/**
 * A throwaway PKI for the hsm-agent tests, made with the openssl CLI: a CA, the agent's server
 * certificate (SAN IP 127.0.0.1) and a client certificate, plus a client certificate from a second,
 * untrusted CA. ECDSA P-256, valid for one day, in a temporary directory (0700).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  readonly dir: string;
  readonly ca: string;
  readonly agentCert: string;
  readonly agentKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly rogueCert: string;
  readonly rogueKey: string;
  read(file: string): Buffer;
  cleanup(): void;
}

export function makeTestCerts(): CertFiles {
  const dir = mkdtempSync(join(tmpdir(), 'strongroom-hsm-pki-'));
  const path = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ca = (name: string): void =>
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path(`${name}.key`), '-out', path(`${name}.pem`),
      '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  const leaf = (name: string, issuer: string, usage: string): void => {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', `/CN=${name}`);
    writeFileSync(path(`${name}.ext`), `basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', path(`${issuer}.pem`), '-CAkey', path(`${issuer}.key`), '-CAcreateserial',
      '-out', path(`${name}.pem`), '-days', '1', '-extfile', path(`${name}.ext`));
  };
  ca('ca');
  ca('rogue-ca');
  leaf('agent', 'ca', 'serverAuth');
  leaf('client', 'ca', 'clientAuth');
  leaf('rogue', 'rogue-ca', 'clientAuth');
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);
  return {
    dir,
    ca: path('ca.pem'),
    agentCert: path('agent.pem'),
    agentKey: path('agent.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    rogueCert: path('rogue.pem'),
    rogueKey: path('rogue.key'),
    read: (file) => readFileSync(file),
    cleanup,
  };
}
