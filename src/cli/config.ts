import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import { databaseBackend } from '../storage/index.ts';
import type { ServeOptions } from './serve.ts';
import { parseQuotas, parseXksProxyAddresses } from './serve-settings.ts';

/**
 * `strongroom serve`'s settings, each settable four ways: a flag, a STRONGROOM_* environment
 * variable, a key in the JSON file named by --config (or STRONGROOM_CONFIG), and a default —
 * in that order of precedence. Every value is checked at start; an error names the setting and
 * where it came from, never the value (settings may one day carry secrets, and a log of startup
 * errors should not become a place they leak to). docs/configuration.md is this table in prose.
 */

type Kind = 'string' | 'integer' | 'workers' | 'boolean' | 'choice' | 'list';

export interface Setting {
  /** The key in the config file (camelCase of the flag). */
  readonly key: string;
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  readonly description: string;
  readonly defaultValue?: string | number | boolean | string[];
  /** integer: inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
  /** A path: relative paths in the config file are taken from the file's directory. */
  readonly path?: boolean;
  /** The flag's placeholder in --help. */
  readonly placeholder?: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug'] as const;
export const DEFAULT_PORT = 7373;

export const SERVE_SETTINGS: readonly Setting[] = [
  { key: 'dataDir', flag: '--data-dir', env: 'STRONGROOM_DATA_DIR', kind: 'string', path: true, placeholder: '<dir>', defaultValue: './data', description: 'where keys, metadata and credentials live' },
  { key: 'database', flag: '--database', env: 'STRONGROOM_DATABASE', kind: 'string', placeholder: '<url>', description: "metadata and audit trail in a shared PostgreSQL (postgres://user@host:port/db[?schema=name]) instead of the data directory's SQLite; for several nodes" },
  { key: 'host', flag: '--host', env: 'STRONGROOM_HOST', kind: 'string', placeholder: '<host>', defaultValue: '127.0.0.1', description: 'address to listen on (loopback by default)' },
  { key: 'port', flag: '--port', env: 'STRONGROOM_PORT', kind: 'integer', min: 0, max: 65535, placeholder: '<port>', defaultValue: DEFAULT_PORT, description: 'port to listen on (0 picks a free one)' },
  { key: 'region', flag: '--region', env: 'STRONGROOM_REGION', kind: 'string', placeholder: '<region>', defaultValue: 'us-east-1', description: 'the AWS region name this server answers as' },
  { key: 'tlsCert', flag: '--tls-cert', env: 'STRONGROOM_TLS_CERT', kind: 'string', path: true, placeholder: '<file>', description: 'serve HTTPS with this PEM certificate (needs --tls-key)' },
  { key: 'tlsKey', flag: '--tls-key', env: 'STRONGROOM_TLS_KEY', kind: 'string', path: true, placeholder: '<file>', description: 'PEM private key for --tls-cert' },
  { key: 'workers', flag: '--workers', env: 'STRONGROOM_WORKERS', kind: 'workers', placeholder: '<n|auto>', defaultValue: 1, description: 'server processes sharing the port' },
  { key: 'schedulerInterval', flag: '--scheduler-interval', env: 'STRONGROOM_SCHEDULER_INTERVAL', kind: 'integer', min: 1, max: 86_400, placeholder: '<seconds>', defaultValue: 60, description: 'how often due rotations and deletions are carried out' },
  { key: 'logLevel', flag: '--log-level', env: 'STRONGROOM_LOG_LEVEL', kind: 'choice', choices: LOG_LEVELS, placeholder: '<level>', defaultValue: 'info', description: 'log level' },
  { key: 'logRequests', flag: '--log-requests', env: 'STRONGROOM_LOG_REQUESTS', kind: 'boolean', defaultValue: false, description: 'log one JSON line per request at info level (operation, outcome, duration, request id)' },
  { key: 'auditEncryptionContextValues', flag: '--audit-encryption-context-values', env: 'STRONGROOM_AUDIT_ENCRYPTION_CONTEXT_VALUES', kind: 'boolean', defaultValue: false, description: 'record encryption-context values in the audit trail (default: keys only)' },
  { key: 'xksProxyCa', flag: '--xks-proxy-ca', env: 'STRONGROOM_XKS_PROXY_CA', kind: 'string', path: true, placeholder: '<file>', description: 'PEM CA certificates trusted for external key store proxies (beyond the system CAs)' },
  { key: 'xksProxyAddress', flag: '--xks-proxy-address', env: 'STRONGROOM_XKS_PROXY_ADDRESS', kind: 'list', placeholder: '<host=ip:port,...>', description: "where an external key store proxy's host is reached (repeatable; several addresses: redundant links)" },
  { key: 'quota', flag: '--quota', env: 'STRONGROOM_QUOTA', kind: 'list', placeholder: '<CLASS=RATE|aws>', description: 'request-rate quota for the installation: CLASS=RATE per second (symmetric, rsa, ecc, control), or aws for AWS\'s defaults (repeatable)' },
  { key: 'metricsPort', flag: '--metrics-port', env: 'STRONGROOM_METRICS_PORT', kind: 'integer', min: 0, max: 65535, placeholder: '<port>', description: 'serve /metrics (Prometheus), /healthz and /readyz on this port (off by default)' },
  { key: 'metricsHost', flag: '--metrics-host', env: 'STRONGROOM_METRICS_HOST', kind: 'string', placeholder: '<host>', defaultValue: '127.0.0.1', description: 'address the metrics port listens on (loopback by default)' },
  { key: 'drainTimeout', flag: '--drain-timeout', env: 'STRONGROOM_DRAIN_TIMEOUT', kind: 'integer', min: 0, max: 3600, placeholder: '<seconds>', defaultValue: 10, description: 'on SIGTERM/SIGINT, how long in-flight requests may take to finish before their connections are closed' },
];

/** The flag's value name in commander's opts() (commander camel-cases the flag). */
export const optionName = (setting: Setting): string => setting.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Value = string | number | boolean | string[];

/**
 * Checks one value from text (a flag or an environment variable). Returns the value or throws a
 * message without the value in it.
 */
export function parseSettingText(setting: Setting, text: string): Value {
  switch (setting.kind) {
    case 'string':
      if (text.trim() === '') throw new Error('must not be empty');
      return text;
    case 'integer':
      return integerIn(setting, text);
    case 'workers':
      return text === 'auto' ? availableParallelism() : integerIn({ min: 1, max: 256 }, text);
    case 'choice':
      if (!setting.choices?.includes(text)) throw new Error(`must be one of ${setting.choices?.join(', ')}`);
      return text;
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      throw new Error('must be true or false');
    case 'list':
      // Entries hold commas of their own (host=ip:port,ip:port): the list splits on whitespace.
      return text.split(/\s+/).filter((entry) => entry !== '');
  }
}

function integerIn(bounds: { min?: number; max?: number }, text: string): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < (bounds.min ?? 0) || value > (bounds.max ?? Number.MAX_SAFE_INTEGER)) {
    throw new Error(`must be an integer from ${bounds.min} to ${bounds.max}`);
  }
  return value;
}

/** Checks one value from the config file, where JSON types stand for themselves. */
function parseSettingJson(setting: Setting, value: unknown): Value {
  switch (setting.kind) {
    case 'boolean':
      if (typeof value !== 'boolean') throw new Error('must be true or false');
      return value;
    case 'list':
      if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) throw new Error('must be an array of strings');
      return value as string[];
    case 'integer':
    case 'workers':
      if (typeof value === 'number') return parseSettingText(setting, String(value));
      if (setting.kind === 'workers' && value === 'auto') return parseSettingText(setting, value);
      throw new Error(setting.kind === 'workers' ? 'must be a number or "auto"' : 'must be a number');
    default:
      if (typeof value !== 'string') throw new Error('must be a string');
      return parseSettingText(setting, value);
  }
}

export interface ConfigSources {
  /** Values commander parsed from flags (already checked), keyed by optionName; absent = not given. */
  readonly flags: Readonly<Record<string, unknown>>;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** --config's value; STRONGROOM_CONFIG when absent. */
  readonly configFile?: string;
}

/** Where each setting's value came from, for `strongroom serve`'s errors and tests. */
export type SettingSource = 'flag' | 'env' | 'file' | 'default';

export interface ResolvedConfig {
  readonly options: ServeOptions;
  readonly sources: Readonly<Record<string, SettingSource>>;
}

/** Flags > environment > config file > defaults, every value checked, then the settings checked together. */
export async function resolveServeConfig(sources: ConfigSources): Promise<ResolvedConfig> {
  const configFile = sources.configFile ?? nonEmpty(sources.env.STRONGROOM_CONFIG);
  const file = configFile === undefined ? {} : await readConfigFile(configFile);
  const values: Record<string, Value | undefined> = {};
  const origin: Record<string, SettingSource> = {};
  for (const setting of SERVE_SETTINGS) {
    const flag = sources.flags[optionName(setting)];
    const env = nonEmpty(sources.env[setting.env]);
    let value: Value | undefined;
    try {
      if (flag !== undefined) {
        value = flag as Value;
        origin[setting.key] = 'flag';
      } else if (env !== undefined) {
        origin[setting.key] = 'env';
        value = parseSettingText(setting, env);
      } else if (setting.key in file) {
        origin[setting.key] = 'file';
        value = parseSettingJson(setting, file[setting.key]);
        if (setting.path && typeof value === 'string') value = resolve(dirname(configFile as string), value);
      } else {
        origin[setting.key] = 'default';
        value = setting.defaultValue;
      }
    } catch (error) {
      throw new ConfigError(`${describeSource(setting, origin[setting.key], configFile)}: ${(error as Error).message}`);
    }
    values[setting.key] = value;
  }
  const where = (key: string) => describeSource(settingNamed(key), origin[key], configFile);
  return { options: checkTogether(values, where), sources: origin };
}

function checkTogether(values: Record<string, Value | undefined>, where: (key: string) => string): ServeOptions {
  if ((values.tlsCert === undefined) !== (values.tlsKey === undefined)) {
    throw new ConfigError(`${where(values.tlsCert === undefined ? 'tlsKey' : 'tlsCert')}: --tls-cert and --tls-key go together`);
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(values.region as string)) {
    throw new ConfigError(`${where('region')}: must look like an AWS region name (e.g. us-east-1)`);
  }
  try {
    parseXksProxyAddresses((values.xksProxyAddress as string[] | undefined) ?? []);
  } catch (error) {
    // This message quotes the entry: an address, not a secret, and the operator needs to see which.
    throw new ConfigError(`${where('xksProxyAddress')}: ${(error as Error).message}`);
  }
  try {
    parseQuotas((values.quota as string[] | undefined) ?? []);
  } catch (error) {
    throw new ConfigError(`${where('quota')}: ${(error as Error).message}`);
  }
  if (values.database !== undefined) {
    try {
      databaseBackend(values.database as string);
    } catch (error) {
      throw new ConfigError(`${where('database')}: ${(error as Error).message}`);
    }
  }
  if (values.metricsPort !== undefined && values.metricsPort !== 0 && values.metricsPort === values.port) {
    throw new ConfigError(`${where('metricsPort')}: must differ from the KMS port`);
  }
  return {
    dataDir: values.dataDir as string,
    databaseUrl: values.database as string | undefined,
    host: values.host as string,
    port: values.port as number,
    region: values.region as string,
    workers: values.workers as number,
    tlsCert: values.tlsCert as string | undefined,
    tlsKey: values.tlsKey as string | undefined,
    schedulerIntervalSeconds: values.schedulerInterval as number,
    logLevel: values.logLevel as string,
    logRequests: values.logRequests as boolean,
    auditEncryptionContextValues: values.auditEncryptionContextValues as boolean,
    xksProxyCa: values.xksProxyCa as string | undefined,
    xksProxyAddresses: values.xksProxyAddress as string[] | undefined,
    quotas: values.quota as string[] | undefined,
    metricsPort: values.metricsPort as number | undefined,
    metricsHost: values.metricsHost as string,
    drainTimeoutSeconds: values.drainTimeout as number,
  };
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config file ${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the fault: not repeated here.
    throw new ConfigError(`config file ${path}: not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path}: must be a JSON object of settings`);
  }
  const known = new Set(SERVE_SETTINGS.map((setting) => setting.key));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(`config file ${path}: unknown setting "${key}" (settings: ${[...known].join(', ')})`);
  }
  return parsed as Record<string, unknown>;
}

function describeSource(setting: Setting, source: SettingSource | undefined, configFile: string | undefined): string {
  switch (source) {
    case 'env':
      return `${setting.env}`;
    case 'file':
      return `"${setting.key}" in config file ${configFile}`;
    default:
      return `${setting.flag}`;
  }
}

const settingNamed = (key: string): Setting => SERVE_SETTINGS.find((setting) => setting.key === key) as Setting;

const nonEmpty = (text: string | undefined): string | undefined => (text === undefined || text === '' ? undefined : text);

/**
 * The settings as commander options: no defaults there (an absent flag must stay absent so the
 * environment and the file can supply it); the help shows the default and the variable.
 */
export function serveCommandOptions(): Option[] {
  return SERVE_SETTINGS.map((setting) => {
    const shownDefault = setting.defaultValue === undefined || setting.kind === 'boolean' ? '' : ` (default: ${String(setting.defaultValue)})`;
    const option = new Option(
      setting.kind === 'boolean' ? setting.flag : `${setting.flag} ${setting.placeholder ?? '<value>'}`,
      `${setting.description}${shownDefault} [${setting.env}]`,
    );
    if (setting.kind === 'boolean') return option;
    if (setting.kind === 'list') return option.argParser((value: string, all: string[] = []) => [...all, value]);
    return option.argParser((value: string) => {
      try {
        return parseSettingText(setting, value);
      } catch (error) {
        throw new InvalidArgumentError((error as Error).message);
      }
    });
  });
}
