// Byte helpers: hex, base64, UTF-8, concatenation, constant-time comparison
// and the canonical big-endian codec of SessionVM (state/codec in Go).

import { bytesToHex, hexToBytes, randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';
import { equalBytes as nobleEqual } from '@noble/ciphers/utils.js';

export { bytesToHex as toHex };

/** Decodes lowercase or uppercase hex; throws on odd length or a bad digit. */
export function fromHex(hex: string): Uint8Array {
  return hexToBytes(hex);
}

/** Cryptographically secure random bytes (crypto.getRandomValues). */
export function randomBytes(n: number): Uint8Array {
  return nobleRandomBytes(n);
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 encoding of s. */
export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/** Decodes UTF-8, throwing on invalid input. */
export function fromUtf8(b: Uint8Array): string {
  return dec.decode(b);
}

/** The concatenation of the arguments. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Length-constant comparison (for secrets and MACs); unequal lengths are false. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && nobleEqual(a, b);
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

/** Standard base64 with padding, as Go's encoding/json writes []byte. */
export function toBase64(b: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const v = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += B64[(v >> 18) & 63]! + B64[(v >> 12) & 63]! + B64[(v >> 6) & 63]! + B64[v & 63]!;
  }
  const rest = b.length - i;
  if (rest === 1) {
    const v = b[i]! << 16;
    s += B64[(v >> 18) & 63]! + B64[(v >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const v = (b[i]! << 16) | (b[i + 1]! << 8);
    s += B64[(v >> 18) & 63]! + B64[(v >> 12) & 63]! + B64[(v >> 6) & 63]! + '=';
  }
  return s;
}

/**
 * Decodes standard base64 with padding, strictly: the length must be a
 * multiple of 4, only the standard alphabet, padding only at the end and
 * unused bits zero (so every byte string has exactly one accepted form).
 */
export function fromBase64(s: string): Uint8Array {
  if (typeof s !== 'string' || s.length % 4 !== 0) throw new TypeError('base64: length is not a multiple of 4');
  let pad = 0;
  if (s.endsWith('==')) pad = 2;
  else if (s.endsWith('=')) pad = 1;
  const n = (s.length / 4) * 3 - pad;
  const out = new Uint8Array(n);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const last = i + 4 === s.length;
    const v = [0, 0, 0, 0];
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      if (last && j >= 4 - pad) {
        if (c !== 61) throw new TypeError('base64: bad padding');
        continue;
      }
      const x = c < 128 ? B64_INDEX[c]! : -1;
      if (x < 0) throw new TypeError(`base64: invalid character at ${i + j}`);
      v[j] = x;
    }
    const w = (v[0]! << 18) | (v[1]! << 12) | (v[2]! << 6) | v[3]!;
    if (last && pad === 2) {
      if (w & 0xffff) throw new TypeError('base64: non-zero padding bits');
      out[o++] = w >> 16;
    } else if (last && pad === 1) {
      if (w & 0xff) throw new TypeError('base64: non-zero padding bits');
      out[o++] = w >> 16;
      out[o++] = (w >> 8) & 0xff;
    } else {
      out[o++] = w >> 16;
      out[o++] = (w >> 8) & 0xff;
      out[o++] = w & 0xff;
    }
  }
  return out;
}

/** Thrown by Reader on truncated, oversize or trailing input. */
export class CodecError extends Error {
  override name = 'CodecError';
}

/** Appends big-endian integers and length-prefixed fields (Go's state/codec.Writer). */
export class Writer {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    this.grow(1);
    this.buf[this.len++] = v;
    return this;
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`u16 out of range: ${v}`);
    this.grow(2);
    this.buf[this.len++] = v >>> 8;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    this.grow(4);
    new DataView(this.buf.buffer, this.buf.byteOffset).setUint32(this.len, v);
    this.len += 4;
    return this;
  }

  u64(v: bigint | number): this {
    const x = BigInt(v);
    if (x < 0n || x > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${v}`);
    this.grow(8);
    new DataView(this.buf.buffer, this.buf.byteOffset).setBigUint64(this.len, x);
    this.len += 8;
    return this;
  }

  i64(v: bigint | number): this {
    const x = BigInt(v);
    if (x < -(1n << 63n) || x >= 1n << 63n) throw new RangeError(`i64 out of range: ${v}`);
    this.grow(8);
    new DataView(this.buf.buffer, this.buf.byteOffset).setBigInt64(this.len, x);
    this.len += 8;
    return this;
  }

  /** Appends b as it is (the reader knows its size). */
  fixed(b: Uint8Array, size?: number): this {
    if (size !== undefined && b.length !== size) throw new RangeError(`want ${size} bytes, got ${b.length}`);
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** Appends a u32 length then b. */
  bytes(b: Uint8Array): this {
    return this.u32(b.length).fixed(b);
  }

  /** Appends a u32 length then the UTF-8 of s. */
  string(s: string): this {
    return this.bytes(utf8(s));
  }

  /** The bytes written (a copy). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  get length(): number {
    return this.len;
  }
}

/**
 * Reads what Writer writes, refusing truncation, fields larger than the
 * caller's bound and (at done) trailing bytes. Returned slices are copies.
 */
export class Reader {
  private off = 0;
  private readonly view: DataView;

  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  get offset(): number {
    return this.off;
  }

  get remaining(): number {
    return this.b.length - this.off;
  }

  private need(n: number): void {
    if (n < 0 || this.b.length - this.off < n) throw new CodecError('truncated input');
  }

  u8(): number {
    this.need(1);
    return this.b[this.off++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.off);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.off);
    this.off += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.off);
    this.off += 8;
    return v;
  }

  i64(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.off);
    this.off += 8;
    return v;
  }

  fixed(n: number): Uint8Array {
    this.need(n);
    const s = this.b.slice(this.off, this.off + n);
    this.off += n;
    return s;
  }

  /** A u32 length (at most max) then that many bytes. */
  bytes(max: number, field: string): Uint8Array {
    const n = this.u32();
    if (n > max) throw new CodecError(`${field} is ${n} bytes, at most ${max}`);
    return this.fixed(n);
  }

  /** A u32 element count of at most max. */
  count(max: number, field: string): number {
    const n = this.u32();
    if (n > max) throw new CodecError(`${field} has ${n} elements, at most ${max}`);
    return n;
  }

  /** Input bytes [start, end). */
  slice(start: number, end: number): Uint8Array {
    return this.b.slice(start, end);
  }

  /** Refuses trailing input. */
  done(): void {
    if (this.off !== this.b.length) throw new CodecError(`trailing bytes: ${this.b.length - this.off} unread`);
  }
}
