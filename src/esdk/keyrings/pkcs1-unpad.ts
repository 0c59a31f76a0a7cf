/**
 * PKCS#1 v1.5 encryption unpadding (RFC 8017 §7.2.2) over a raw RSA block, for the raw RSA keyring.
 * Node ≥ 20.11 refuses RSA_PKCS1_PADDING private decryption (CVE-2023-46809, the Marvin attack), so
 * the keyring decrypts without padding and checks the block here. The check runs over every byte with
 * no data-dependent branch and only accepts a message of the one length a data key can have, so a
 * failure reveals neither where the padding broke nor the message length; all failures end alike
 * (the keyring moves on to the next key).
 */
export function pkcs1Unpad(block: Uint8Array, expectedLength: number): Uint8Array | undefined {
  const n = block.length;
  // 0x00 0x02, then at least 8 non-zero padding bytes, a 0x00 separator, then the message.
  let bad = block[0] | (block[1] ^ 2);
  let separator = 0;
  let found = 0;
  for (let i = 2; i < n; i++) {
    const isZero = ((block[i] - 1) >>> 31) & 1 & (found ^ 1);
    separator |= isZero * i;
    found |= isZero;
  }
  bad |= found ^ 1;
  bad |= separator < 10 ? 1 : 0;
  bad |= n - separator - 1 !== expectedLength ? 1 : 0;
  if (bad !== 0) return undefined;
  return block.slice(n - expectedLength);
}
