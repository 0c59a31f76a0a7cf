/**
 * A fresh member joining the cluster (cluster.ts, addMember, under the change lock): the key
 * ceremony installs the cluster wrapping key from an active source, then every object of the
 * source is owed to the new member and copied by its re-synchronisation (resync.ts).
 */
import type { SecretBytes } from '../../../crypto/secret-bytes.ts';
import { installClusterKey } from './ceremony.ts';
import { oweMissingObjects, resyncMember } from './resync.ts';
import type { ClusterContext, Slot } from './slot.ts';

export interface JoinSteps {
  readonly sourceSoPin: SecretBytes;
  readonly memberSoPin: SecretBytes;
  /** Takes the source out of the rotation for its SO step (true) and returns it (false). */
  sourceBusy(busy: boolean): void;
  /** Called once the member holds the cluster key, before the objects are listed (the catalog records it). */
  onJoined?: () => Promise<void>;
}

/**
 * Runs the join; returns the ceremony's transport key fingerprint. The user PIN first: a member
 * that cannot log in must not receive the cluster key. A join that fails at any step closes the
 * joining member: its sessions (an agent's TLS connection) must not outlive the failed command.
 */
export async function joinMember(context: ClusterContext, joining: Slot, source: Slot, steps: JoinSteps): Promise<string> {
  const member = joining.member;
  try {
    await member.connect();
    // The source leaves the rotation during its SO step (its user sessions are closed then).
    steps.sourceBusy(true);
    let fingerprint: string;
    try {
      fingerprint = await installClusterKey(context.clusterId, source.member, steps.sourceSoPin, member, steps.memberSoPin);
    } finally {
      steps.sourceBusy(false);
    }
    // The change lock stops this process's creates and destroys, not another's (a connected
    // server): so the source is listed after onJoined has put the member in the catalog, and a
    // key made elsewhere should be either in that list or owed by its maker, who sees it listed.
    // (A connected maker also compares the member itself when it starts to follow it: resync.ts.)
    await steps.onJoined?.();
    await oweMissingObjects(context, source, joining);
    await resyncMember(context, joining);
    return fingerprint;
  } catch (error) {
    await member.close().catch(() => {});
    throw error;
  }
}
