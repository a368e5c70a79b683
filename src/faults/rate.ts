// Rates as tc(8) writes them -> bytes per second. A number is bytes per second.
// As in tc: "bit" units are bits per second, "bps" units are BYTES per second
// ("2mbps" is 2,000,000 bytes/s); k/m/g/t are powers of 1000, ki/mi/gi/ti of 1024.
import { z } from 'zod';

const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, ti: 1024 ** 4 };
const RATE = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(|k|m|g|t|ki|mi|gi|ti)(bit|bps)\s*$/i;

/** 1 kbit/s .. 100 gbit/s: below, a packet takes seconds; above, no veth carries it. */
export const MIN_RATE_BYTES = 125;
export const MAX_RATE_BYTES = 12.5e9;

export const RATE_EXPECTED =
  "a rate from 1kbit to 100gbit: bytes per second as a number (e.g. 125000), or a string with a tc unit " +
  "such as '1mbit', '500kbit' (bits/s) or '2mbps' (BYTES/s)";

/** Bytes per second, or null when the input is not a rate in range. */
export function parseRate(input: unknown): number | null {
  let bytes: number;
  if (typeof input === 'number') {
    bytes = input;
  } else if (typeof input === 'string') {
    const m = RATE.exec(input);
    if (!m) return null;
    const value = Number(m[1]) * (PREFIX[(m[2] as string).toLowerCase()] as number);
    bytes = (m[3] as string).toLowerCase() === 'bit' ? value / 8 : value;
  } else {
    return null;
  }
  if (!Number.isFinite(bytes) || bytes < MIN_RATE_BYTES || bytes > MAX_RATE_BYTES) return null;
  return bytes;
}

/** A rate field: accepts a number or a tc-style string, parses to bytes per second. */
export const rate = z
  .custom<number | string>((v) => parseRate(v) !== null, { error: RATE_EXPECTED })
  .transform((v) => parseRate(v) as number);

/** "1.00 mbit/s (125000 B/s)" for messages and journal descriptions. */
export function formatRate(bytesPerSec: number): string {
  const bits = bytesPerSec * 8;
  const [v, u] = bits >= 1e9 ? [bits / 1e9, 'gbit'] : bits >= 1e6 ? [bits / 1e6, 'mbit'] : [bits / 1e3, 'kbit'];
  return `${v.toFixed(2)} ${u}/s (${Math.round(bytesPerSec)} B/s)`;
}
