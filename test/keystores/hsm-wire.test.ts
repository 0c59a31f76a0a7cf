/** The hsm-agent frame codec (wire.ts): round trips, split delivery, and refusal of bad frames. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Pkcs11Error } from '../../src/keystores/pkcs11/errors.ts';
import { FrameReader, MAX_FRAME_BYTES, OP, RESPONSE_OK, encodeFrame } from '../../src/keystores/pkcs11/cluster/wire.ts';

const isProtocolError = (error: unknown): boolean => error instanceof Pkcs11Error && error.code === 'PROTOCOL_ERROR';

describe('hsm-agent frames', () => {
  test('round-trip request id, kind and fields, including empty fields', () => {
    const fields = [Buffer.from('object-id'), Buffer.alloc(0), Buffer.alloc(5000, 7)];
    const [frame, ...rest] = new FrameReader().push(encodeFrame(0xfffffff0, OP.encrypt, fields));
    assert.equal(rest.length, 0);
    assert.equal(frame!.requestId, 0xfffffff0);
    assert.equal(frame!.kind, OP.encrypt);
    assert.deepEqual(frame!.fields, fields);
  });

  test('frames split at every byte boundary and several in one chunk are all read', () => {
    const bytes = Buffer.concat([encodeFrame(1, OP.wrap, [Buffer.from('a')]), encodeFrame(2, RESPONSE_OK, [Buffer.from('bc'), Buffer.from('d')])]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const reader = new FrameReader();
      const frames = [...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))];
      assert.deepEqual(frames.map((frame) => frame.requestId), [1, 2], `cut at ${cut}`);
    }
  });

  test('a frame announcing more than the limit is refused before it is buffered', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    assert.throws(() => new FrameReader().push(header), isProtocolError);
    assert.throws(() => encodeFrame(1, OP.encrypt, [Buffer.alloc(MAX_FRAME_BYTES)]), isProtocolError);
  });

  test('truncated fields, trailing bytes and too-short frames are refused', () => {
    const good = encodeFrame(9, OP.destroy, [Buffer.from('xyz')]);
    const truncatedField = Buffer.from(good);
    truncatedField.writeUInt32BE(100, 13); // field length past the end of the frame
    assert.throws(() => new FrameReader().push(truncatedField), isProtocolError);
    const trailing = Buffer.concat([good, Buffer.from([0])]);
    trailing.writeUInt32BE(good.length - 4 + 1, 0);
    assert.throws(() => new FrameReader().push(trailing), isProtocolError);
    const tooShort = Buffer.from([0, 0, 0, 3, 1, 2, 3]);
    assert.throws(() => new FrameReader().push(tooShort), isProtocolError);
  });
});
