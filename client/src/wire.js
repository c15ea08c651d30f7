// The peer wire codec (docs/protocol-wire.md, protocol/wire.go): one binary
// DataChannel message per peer message, type byte first, big-endian u32s.
// Decoding is as strict as the Go decoder so a peer that would be refused
// there is refused here too; encode never produces what decode refuses.
import { toBits, fromBits } from './bitfield.js';

export const LABEL = 'p2pxhr-v1';
export const VERSION = 1;
export const MAX_PIECE = 16384;
const MAX_ID = 128;
export const MAX_BLOCKS = 1 << 20;
export const MAX_BLOCK_SIZE = 4 << 20;
const MAX_MESSAGE = 3 + MAX_ID + 4 + MAX_BLOCKS / 8;

export const HELLO = 1, HAVE = 2, REQUEST = 3, PIECE = 4, CANCEL = 5, REJECT = 6;
const NAMES = ['', 'hello', 'have', 'request', 'piece', 'cancel', 'reject'];
export const REJECT_BUSY = 1, REJECT_NOT_HAVE = 2, REJECT_INVALID = 3, REJECT_SHUTDOWN = 4;

/** A message a peer must not send; the connection is closed and reported. */
export class WireError extends Error {
  constructor(message) { super(message); this.name = 'WireError'; this.code = 'protocol'; }
}

const fail = (t, msg) => { throw new WireError(`wire ${NAMES[t] || 'type ' + t}: ${msg}`); };

function checkRange(t, block, off, n) {
  if (!(block >= 0 && block < MAX_BLOCKS)) fail(t, `block index ${block} out of range`);
  if (!(off >= 0 && off < MAX_BLOCK_SIZE)) fail(t, `offset ${off} out of range [0, ${MAX_BLOCK_SIZE})`);
  if (!(n > 0 && n <= MAX_BLOCK_SIZE)) fail(t, `length ${n} out of range [1, ${MAX_BLOCK_SIZE}]`);
  if (off + n > MAX_BLOCK_SIZE) fail(t, `offset ${off} + length ${n} exceeds the block size limit ${MAX_BLOCK_SIZE}`);
}

function checkPiece(block, off, n) {
  if (!(block >= 0 && block < MAX_BLOCKS)) fail(PIECE, `block index ${block} out of range`);
  if (n === 0) fail(PIECE, 'empty data');
  if (n > MAX_PIECE) fail(PIECE, `data length ${n} exceeds ${MAX_PIECE}`);
  if (off < 0 || off + n > MAX_BLOCK_SIZE) fail(PIECE, `offset ${off} + length ${n} exceeds the block size limit ${MAX_BLOCK_SIZE}`);
}

/**
 * Encodes a message object ({type:'hello', swarmId, blockCount, have:[bool]},
 * {type:'have', block}, {type:'request'|'cancel'|'reject', block, offset,
 * length[, reason]}, {type:'piece', block, offset, data: Uint8Array}).
 * @returns {Uint8Array}
 */
export function encode(m) {
  const t = NAMES.indexOf(m.type);
  let b, v;
  switch (t) {
    case HELLO: {
      const id = new TextEncoder().encode(m.swarmId);
      if (id.length < 1 || id.length > MAX_ID) fail(t, `swarm id length ${id.length} out of range [1, ${MAX_ID}]`);
      if (!(m.blockCount >= 0 && m.blockCount <= MAX_BLOCKS)) fail(t, `block count ${m.blockCount} out of range`);
      const bits = toBits(m.have.slice(0, m.blockCount));
      b = new Uint8Array(7 + id.length + ((m.blockCount + 7) >> 3));
      v = new DataView(b.buffer);
      b[1] = VERSION; b[2] = id.length; b.set(id, 3);
      v.setUint32(3 + id.length, m.blockCount);
      b.set(bits, 7 + id.length);
      break;
    }
    case HAVE:
      if (!(m.block >= 0 && m.block < MAX_BLOCKS)) fail(t, `block index ${m.block} out of range`);
      b = new Uint8Array(5); new DataView(b.buffer).setUint32(1, m.block);
      break;
    case REQUEST: case CANCEL: case REJECT:
      checkRange(t, m.block, m.offset, m.length);
      b = new Uint8Array(t === REJECT ? 14 : 13);
      v = new DataView(b.buffer);
      v.setUint32(1, m.block); v.setUint32(5, m.offset); v.setUint32(9, m.length);
      if (t === REJECT) b[13] = m.reason;
      break;
    case PIECE:
      checkPiece(m.block, m.offset, m.data.length);
      b = new Uint8Array(9 + m.data.length);
      v = new DataView(b.buffer);
      v.setUint32(1, m.block); v.setUint32(5, m.offset); b.set(m.data, 9);
      break;
    default:
      throw new WireError('wire: unknown message ' + m.type);
  }
  b[0] = t;
  return b;
}

/**
 * Decodes one DataChannel message (ArrayBuffer or Uint8Array). A piece's
 * data is a view into the input.
 * @throws {WireError}
 */
export function decode(input) {
  const b = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (b.length === 0) throw new WireError('wire: empty message');
  if (b.length > MAX_MESSAGE) throw new WireError(`wire: message of ${b.length} bytes exceeds ${MAX_MESSAGE}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const t = b[0], n = b.length;
  switch (t) {
    case HELLO: {
      if (n < 3) fail(t, 'truncated header');
      if (b[1] !== VERSION) fail(t, `unsupported version ${b[1]}, want ${VERSION}`);
      const idLen = b[2];
      if (idLen === 0 || idLen > MAX_ID) fail(t, `swarm id length ${idLen} out of range [1, ${MAX_ID}]`);
      if (n < 3 + idLen + 4) fail(t, 'truncated swarm id or block count');
      const blockCount = v.getUint32(3 + idLen);
      if (blockCount > MAX_BLOCKS) fail(t, `block count ${blockCount} exceeds ${MAX_BLOCKS}`);
      const bits = b.subarray(7 + idLen), want = (blockCount + 7) >> 3;
      if (bits.length !== want) fail(t, `bitfield is ${bits.length} bytes, want ${want} for ${blockCount} blocks`);
      const pad = blockCount & 7;
      if (pad && (bits[want - 1] & (0xff >> pad))) fail(t, `bitfield has padding bits set after block ${blockCount - 1}`);
      return {
        type: 'hello', version: b[1], blockCount,
        swarmId: new TextDecoder().decode(b.subarray(3, 3 + idLen)),
        have: fromBits(bits, blockCount),
      };
    }
    case HAVE: {
      if (n !== 5) fail(t, `length ${n}, want 5`);
      const block = v.getUint32(1);
      if (block >= MAX_BLOCKS) fail(t, `block index ${block} out of range [0, ${MAX_BLOCKS})`);
      return { type: 'have', block };
    }
    case REQUEST: case CANCEL: case REJECT: {
      const want = t === REJECT ? 14 : 13;
      if (n !== want) fail(t, `length ${n}, want ${want}`);
      const m = { type: NAMES[t], block: v.getUint32(1), offset: v.getUint32(5), length: v.getUint32(9) };
      checkRange(t, m.block, m.offset, m.length);
      if (t === REJECT) m.reason = b[13];
      return m;
    }
    case PIECE: {
      if (n < 9) fail(t, `length ${n}, want at least 10`);
      const m = { type: 'piece', block: v.getUint32(1), offset: v.getUint32(5), data: b.subarray(9) };
      checkPiece(m.block, m.offset, m.data.length);
      return m;
    }
  }
  throw new WireError(`wire: unknown message type ${t}`);
}
