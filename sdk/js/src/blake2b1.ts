// BLAKE2b-256 (RFC 7693, no key) of an input of at most one block (128
// bytes), for the registration pre-filter, which hashes 108 bytes some
// 2^21 times per registration at the defaults. noble's general-purpose
// blake2b spends much of its time on objects and options for such short
// inputs; this computes the single compression directly, with the state in
// local variables as 32-bit halves (l: low, h: high). The tests compare it
// with noble's blake2b on every length from 0 to 128.

// (lo, hi) halves of the SHA-512 IV.
const IV = Uint32Array.from([
  0xf3bcc908, 0x6a09e667, 0x84caa73b, 0xbb67ae85, 0xfe94f82b, 0x3c6ef372, 0x5f1d36f1, 0xa54ff53a,
  0xade682d1, 0x510e527f, 0x2b3e6c1f, 0x9b05688c, 0xfb41bd6b, 0x1f83d9ab, 0x137e2179, 0x5be0cd19,
]);

const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];
// The message word (as an offset into the 32 halves) of each round's G inputs.
const S = new Uint8Array(12 * 16);
for (let r = 0; r < 12; r++) for (let i = 0; i < 16; i++) S[r * 16 + i] = SIGMA[r % 10]![i]! * 2;

/** The parameter block's first word: digest length 32, no key, fanout 1, depth 1. */
const PARAM = 0x01010020;
const M = 0xffffffff;
const block = new Uint8Array(128);
/** The message words: a view of block on little-endian platforms, else a copy made per call. */
const LE = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const m = LE ? new Uint32Array(block.buffer) : new Uint32Array(32);
const blockView = new DataView(block.buffer);

/**
 * BLAKE2b-256 of input (at most 128 bytes), written to out (32 bytes, a
 * new array when absent).
 */
export function blake2b256OneBlock(input: Uint8Array, out: Uint8Array = new Uint8Array(32)): Uint8Array {
  const n = input.length;
  if (n > 128) throw new RangeError('blake2b256OneBlock: input longer than one block');
  if (out.length < 32) throw new RangeError('blake2b256OneBlock: output shorter than 32 bytes');
  block.fill(0);
  block.set(input);
  if (!LE) for (let i = 0; i < 32; i++) m[i] = blockView.getUint32(i * 4, true);
  // v[0..7] = h (the IV with the parameter block), v[8..15] = IV, t = n, last block.
  let v0l = (IV[0]! ^ PARAM) >>> 0, v0h = IV[1]!, v1l = IV[2]!, v1h = IV[3]!, v2l = IV[4]!, v2h = IV[5]!, v3l = IV[6]!, v3h = IV[7]!;
  let v4l = IV[8]!, v4h = IV[9]!, v5l = IV[10]!, v5h = IV[11]!, v6l = IV[12]!, v6h = IV[13]!, v7l = IV[14]!, v7h = IV[15]!;
  let v8l = IV[0]!, v8h = IV[1]!, v9l = IV[2]!, v9h = IV[3]!, v10l = IV[4]!, v10h = IV[5]!, v11l = IV[6]!, v11h = IV[7]!;
  let v12l = (IV[8]! ^ n) >>> 0, v12h = IV[9]!, v13l = IV[10]!, v13h = IV[11]!, v14l = ~IV[12]! >>> 0, v14h = ~IV[13]! >>> 0, v15l = IV[14]!, v15h = IV[15]!;
  let t = 0, u = 0, x = 0;
  for (let s = 0; s < 12 * 16; s += 16) {
    // G0: v0, v4, v8, v12
    x = S[s + 0]!;
    t = v0l + v4l; v0h = v0h + v4h + (t > M ? 1 : 0); v0l = t >>> 0;
    t = v0l + m[x]!; v0h = (v0h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v0l = t >>> 0;
    t = (v12l ^ v0l) >>> 0; v12l = (v12h ^ v0h) >>> 0; v12h = t;
    t = v8l + v12l; v8h = (v8h + v12h + (t > M ? 1 : 0)) >>> 0; v8l = t >>> 0;
    t = v4l ^ v8l; u = v4h ^ v8h; v4l = ((t >>> 24) | (u << 8)) >>> 0; v4h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 1]!;
    t = v0l + v4l; v0h = v0h + v4h + (t > M ? 1 : 0); v0l = t >>> 0;
    t = v0l + m[x]!; v0h = (v0h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v0l = t >>> 0;
    t = v12l ^ v0l; u = v12h ^ v0h; v12l = ((t >>> 16) | (u << 16)) >>> 0; v12h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v8l + v12l; v8h = (v8h + v12h + (t > M ? 1 : 0)) >>> 0; v8l = t >>> 0;
    t = v4l ^ v8l; u = v4h ^ v8h; v4l = ((t << 1) | (u >>> 31)) >>> 0; v4h = ((u << 1) | (t >>> 31)) >>> 0;
    // G1: v1, v5, v9, v13
    x = S[s + 2]!;
    t = v1l + v5l; v1h = v1h + v5h + (t > M ? 1 : 0); v1l = t >>> 0;
    t = v1l + m[x]!; v1h = (v1h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v1l = t >>> 0;
    t = (v13l ^ v1l) >>> 0; v13l = (v13h ^ v1h) >>> 0; v13h = t;
    t = v9l + v13l; v9h = (v9h + v13h + (t > M ? 1 : 0)) >>> 0; v9l = t >>> 0;
    t = v5l ^ v9l; u = v5h ^ v9h; v5l = ((t >>> 24) | (u << 8)) >>> 0; v5h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 3]!;
    t = v1l + v5l; v1h = v1h + v5h + (t > M ? 1 : 0); v1l = t >>> 0;
    t = v1l + m[x]!; v1h = (v1h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v1l = t >>> 0;
    t = v13l ^ v1l; u = v13h ^ v1h; v13l = ((t >>> 16) | (u << 16)) >>> 0; v13h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v9l + v13l; v9h = (v9h + v13h + (t > M ? 1 : 0)) >>> 0; v9l = t >>> 0;
    t = v5l ^ v9l; u = v5h ^ v9h; v5l = ((t << 1) | (u >>> 31)) >>> 0; v5h = ((u << 1) | (t >>> 31)) >>> 0;
    // G2: v2, v6, v10, v14
    x = S[s + 4]!;
    t = v2l + v6l; v2h = v2h + v6h + (t > M ? 1 : 0); v2l = t >>> 0;
    t = v2l + m[x]!; v2h = (v2h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v2l = t >>> 0;
    t = (v14l ^ v2l) >>> 0; v14l = (v14h ^ v2h) >>> 0; v14h = t;
    t = v10l + v14l; v10h = (v10h + v14h + (t > M ? 1 : 0)) >>> 0; v10l = t >>> 0;
    t = v6l ^ v10l; u = v6h ^ v10h; v6l = ((t >>> 24) | (u << 8)) >>> 0; v6h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 5]!;
    t = v2l + v6l; v2h = v2h + v6h + (t > M ? 1 : 0); v2l = t >>> 0;
    t = v2l + m[x]!; v2h = (v2h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v2l = t >>> 0;
    t = v14l ^ v2l; u = v14h ^ v2h; v14l = ((t >>> 16) | (u << 16)) >>> 0; v14h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v10l + v14l; v10h = (v10h + v14h + (t > M ? 1 : 0)) >>> 0; v10l = t >>> 0;
    t = v6l ^ v10l; u = v6h ^ v10h; v6l = ((t << 1) | (u >>> 31)) >>> 0; v6h = ((u << 1) | (t >>> 31)) >>> 0;
    // G3: v3, v7, v11, v15
    x = S[s + 6]!;
    t = v3l + v7l; v3h = v3h + v7h + (t > M ? 1 : 0); v3l = t >>> 0;
    t = v3l + m[x]!; v3h = (v3h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v3l = t >>> 0;
    t = (v15l ^ v3l) >>> 0; v15l = (v15h ^ v3h) >>> 0; v15h = t;
    t = v11l + v15l; v11h = (v11h + v15h + (t > M ? 1 : 0)) >>> 0; v11l = t >>> 0;
    t = v7l ^ v11l; u = v7h ^ v11h; v7l = ((t >>> 24) | (u << 8)) >>> 0; v7h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 7]!;
    t = v3l + v7l; v3h = v3h + v7h + (t > M ? 1 : 0); v3l = t >>> 0;
    t = v3l + m[x]!; v3h = (v3h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v3l = t >>> 0;
    t = v15l ^ v3l; u = v15h ^ v3h; v15l = ((t >>> 16) | (u << 16)) >>> 0; v15h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v11l + v15l; v11h = (v11h + v15h + (t > M ? 1 : 0)) >>> 0; v11l = t >>> 0;
    t = v7l ^ v11l; u = v7h ^ v11h; v7l = ((t << 1) | (u >>> 31)) >>> 0; v7h = ((u << 1) | (t >>> 31)) >>> 0;
    // G4: v0, v5, v10, v15
    x = S[s + 8]!;
    t = v0l + v5l; v0h = v0h + v5h + (t > M ? 1 : 0); v0l = t >>> 0;
    t = v0l + m[x]!; v0h = (v0h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v0l = t >>> 0;
    t = (v15l ^ v0l) >>> 0; v15l = (v15h ^ v0h) >>> 0; v15h = t;
    t = v10l + v15l; v10h = (v10h + v15h + (t > M ? 1 : 0)) >>> 0; v10l = t >>> 0;
    t = v5l ^ v10l; u = v5h ^ v10h; v5l = ((t >>> 24) | (u << 8)) >>> 0; v5h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 9]!;
    t = v0l + v5l; v0h = v0h + v5h + (t > M ? 1 : 0); v0l = t >>> 0;
    t = v0l + m[x]!; v0h = (v0h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v0l = t >>> 0;
    t = v15l ^ v0l; u = v15h ^ v0h; v15l = ((t >>> 16) | (u << 16)) >>> 0; v15h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v10l + v15l; v10h = (v10h + v15h + (t > M ? 1 : 0)) >>> 0; v10l = t >>> 0;
    t = v5l ^ v10l; u = v5h ^ v10h; v5l = ((t << 1) | (u >>> 31)) >>> 0; v5h = ((u << 1) | (t >>> 31)) >>> 0;
    // G5: v1, v6, v11, v12
    x = S[s + 10]!;
    t = v1l + v6l; v1h = v1h + v6h + (t > M ? 1 : 0); v1l = t >>> 0;
    t = v1l + m[x]!; v1h = (v1h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v1l = t >>> 0;
    t = (v12l ^ v1l) >>> 0; v12l = (v12h ^ v1h) >>> 0; v12h = t;
    t = v11l + v12l; v11h = (v11h + v12h + (t > M ? 1 : 0)) >>> 0; v11l = t >>> 0;
    t = v6l ^ v11l; u = v6h ^ v11h; v6l = ((t >>> 24) | (u << 8)) >>> 0; v6h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 11]!;
    t = v1l + v6l; v1h = v1h + v6h + (t > M ? 1 : 0); v1l = t >>> 0;
    t = v1l + m[x]!; v1h = (v1h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v1l = t >>> 0;
    t = v12l ^ v1l; u = v12h ^ v1h; v12l = ((t >>> 16) | (u << 16)) >>> 0; v12h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v11l + v12l; v11h = (v11h + v12h + (t > M ? 1 : 0)) >>> 0; v11l = t >>> 0;
    t = v6l ^ v11l; u = v6h ^ v11h; v6l = ((t << 1) | (u >>> 31)) >>> 0; v6h = ((u << 1) | (t >>> 31)) >>> 0;
    // G6: v2, v7, v8, v13
    x = S[s + 12]!;
    t = v2l + v7l; v2h = v2h + v7h + (t > M ? 1 : 0); v2l = t >>> 0;
    t = v2l + m[x]!; v2h = (v2h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v2l = t >>> 0;
    t = (v13l ^ v2l) >>> 0; v13l = (v13h ^ v2h) >>> 0; v13h = t;
    t = v8l + v13l; v8h = (v8h + v13h + (t > M ? 1 : 0)) >>> 0; v8l = t >>> 0;
    t = v7l ^ v8l; u = v7h ^ v8h; v7l = ((t >>> 24) | (u << 8)) >>> 0; v7h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 13]!;
    t = v2l + v7l; v2h = v2h + v7h + (t > M ? 1 : 0); v2l = t >>> 0;
    t = v2l + m[x]!; v2h = (v2h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v2l = t >>> 0;
    t = v13l ^ v2l; u = v13h ^ v2h; v13l = ((t >>> 16) | (u << 16)) >>> 0; v13h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v8l + v13l; v8h = (v8h + v13h + (t > M ? 1 : 0)) >>> 0; v8l = t >>> 0;
    t = v7l ^ v8l; u = v7h ^ v8h; v7l = ((t << 1) | (u >>> 31)) >>> 0; v7h = ((u << 1) | (t >>> 31)) >>> 0;
    // G7: v3, v4, v9, v14
    x = S[s + 14]!;
    t = v3l + v4l; v3h = v3h + v4h + (t > M ? 1 : 0); v3l = t >>> 0;
    t = v3l + m[x]!; v3h = (v3h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v3l = t >>> 0;
    t = (v14l ^ v3l) >>> 0; v14l = (v14h ^ v3h) >>> 0; v14h = t;
    t = v9l + v14l; v9h = (v9h + v14h + (t > M ? 1 : 0)) >>> 0; v9l = t >>> 0;
    t = v4l ^ v9l; u = v4h ^ v9h; v4l = ((t >>> 24) | (u << 8)) >>> 0; v4h = ((u >>> 24) | (t << 8)) >>> 0;
    x = S[s + 15]!;
    t = v3l + v4l; v3h = v3h + v4h + (t > M ? 1 : 0); v3l = t >>> 0;
    t = v3l + m[x]!; v3h = (v3h + m[x + 1]! + (t > M ? 1 : 0)) >>> 0; v3l = t >>> 0;
    t = v14l ^ v3l; u = v14h ^ v3h; v14l = ((t >>> 16) | (u << 16)) >>> 0; v14h = ((u >>> 16) | (t << 16)) >>> 0;
    t = v9l + v14l; v9h = (v9h + v14h + (t > M ? 1 : 0)) >>> 0; v9l = t >>> 0;
    t = v4l ^ v9l; u = v4h ^ v9h; v4l = ((t << 1) | (u >>> 31)) >>> 0; v4h = ((u << 1) | (t >>> 31)) >>> 0;

  }
  const ov = new DataView(out.buffer, out.byteOffset, 32);
  ov.setUint32(0, IV[0]! ^ PARAM ^ v0l ^ v8l, true);
  ov.setUint32(4, IV[1]! ^ v0h ^ v8h, true);
  ov.setUint32(8, IV[2]! ^ v1l ^ v9l, true);
  ov.setUint32(12, IV[3]! ^ v1h ^ v9h, true);
  ov.setUint32(16, IV[4]! ^ v2l ^ v10l, true);
  ov.setUint32(20, IV[5]! ^ v2h ^ v10h, true);
  ov.setUint32(24, IV[6]! ^ v3l ^ v11l, true);
  ov.setUint32(28, IV[7]! ^ v3h ^ v11h, true);
  return out;
}
