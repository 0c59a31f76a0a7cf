/**
 * `strongroom policy explain`: how the policies decide a request a principal might make — the
 * decision, the statements that decided it and why (the admin API's ExplainRequest).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { callAdmin, type ConnectionOptions } from './admin-client.ts';
import { keyValue, printJson, run, withConnectionOptions } from './iam.ts';

interface Explanation {
  Decision: string;
  PrincipalArn: string;
  Action: string;
  Resource: string;
  MatchedStatements: { SourcePolicyId: string; Sid?: string; StatementIndex: number; Effect: string }[];
  Reasons: string[];
  GrantId?: string;
}

/** The explanation for a reader: decision first, then the deciding statements, then the reasons. */
export function formatExplanation(explanation: Explanation): string {
  const lines = [
    `Decision:  ${explanation.Decision}`,
    `Principal: ${explanation.PrincipalArn}`,
    `Action:    ${explanation.Action}`,
    `Resource:  ${explanation.Resource}`,
  ];
  if (explanation.GrantId) lines.push(`Grant:     ${explanation.GrantId}`);
  lines.push('Deciding statements:');
  if (explanation.MatchedStatements.length === 0) lines.push('  (none)');
  for (const statement of explanation.MatchedStatements) {
    const sid = statement.Sid === undefined ? '' : ` (Sid "${statement.Sid}")`;
    lines.push(`  ${statement.Effect.padEnd(5)}  ${statement.SourcePolicyId}, statement ${statement.StatementIndex}${sid}`);
  }
  lines.push('Reasons:');
  for (const reason of explanation.Reasons) lines.push(`  - ${reason}`);
  return `${lines.join('\n')}\n`;
}

/** `--context key=value` entries, values of a repeated key gathered (multi-valued keys). */
function contextEntries(pairs: [string, string][] | undefined): { Key: string; Values: string[] }[] | undefined {
  if (!pairs) return undefined;
  const byKey = new Map<string, string[]>();
  for (const [key, value] of pairs) byKey.set(key, [...(byKey.get(key) ?? []), value]);
  return [...byKey].map(([Key, Values]) => ({ Key, Values }));
}

export function registerPolicyCommands(program: Command): void {
  const policy = withConnectionOptions(program.command('policy').description('inspect access decisions'));
  policy
    .command('explain')
    .description('explain whether a principal may make a request, and which statements decide it')
    .requiredOption('--principal <arn>', 'the user, role or assumed-role session ARN')
    .requiredOption('--action <action>', 'e.g. kms:Encrypt')
    .option('--key <key>', 'the key: key id, key ARN, alias name or alias ARN')
    .option('--resource <arn>', 'the resource ARN when the request is on no key (default "*")')
    .addOption(new Option('--encryption-context <key=value>', 'an encryption context pair (repeatable)').argParser(keyValue))
    .addOption(new Option('--context <key=value>', 'a condition key value, e.g. aws:SourceIp=10.0.0.1 (repeatable)').argParser(keyValue))
    .option('--json', 'print the explanation as JSON')
    .action(
      run(async (_options: unknown, command: Command) => {
        const o = command.optsWithGlobals() as ConnectionOptions & Record<string, unknown>;
        const encryptionContext = o.encryptionContext as [string, string][] | undefined;
        const explanation = (await callAdmin(o, 'ExplainRequest', {
          PrincipalArn: o.principal,
          Action: o.action,
          KeyId: o.key,
          Resource: o.resource,
          EncryptionContext: encryptionContext && Object.fromEntries(encryptionContext),
          ContextEntries: contextEntries(o.context as [string, string][] | undefined),
        })) as unknown as Explanation;
        if (o.json) printJson(explanation);
        else process.stdout.write(formatExplanation(explanation));
      }),
    );
}
