import { describe, expect, it } from 'vitest';
import { Chaos } from '../../src/api/chaos.js';
import { ChaosSpecError } from '../../src/contracts/errors.js';
import { formatRate, parseRate } from '../../src/faults/params.js';

describe('parseRate (tc units -> bytes per second)', () => {
  it.each([
    [125000, 125000],
    [1.5e6, 1.5e6],
    ['1mbit', 125_000],
    ['500kbit', 62_500],
    ['1.5mbit', 187_500],
    ['.5gbit', 62_500_000],
    ['8000bit', 1000],
    ['2mbps', 2_000_000], // tc: bps is BYTES per second
    ['64kbps', 64_000],
    ['1000bps', 1000],
    ['1mibit', 131_072],
    ['1mibps', 1_048_576],
    ['1kibps', 1024],
    ['  10 MBit ', 1_250_000], // case and spaces as tc accepts them
    ['100gbit', 12.5e9],
    ['1kbit', 125],
  ])('%j is %d bytes/s', (input, bytes) => {
    expect(parseRate(input)).toBe(bytes);
  });

  it.each([
    ['1000'], // a bare number in a string: tc would read bits, our number field bytes; refused
    ['1 furlong'],
    ['mbit'],
    ['-1mbit'],
    ['1e6bit'],
    ['1mb'],
    ['1 m bit'],
    [''],
    [0],
    [-5],
    [124], // under 1 kbit/s
    ['101gbit'], // over 100 gbit/s
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [null],
    [{ bytes: 5 }],
  ])('%j is not a rate', (input) => {
    expect(parseRate(input)).toBeNull();
  });

  it('formats rates for messages', () => {
    expect(formatRate(125_000)).toBe('1.00 mbit/s (125000 B/s)');
    expect(formatRate(62_500)).toBe('500.00 kbit/s (62500 B/s)');
    expect(formatRate(1.25e9)).toBe('10.00 gbit/s (1250000000 B/s)');
  });

  it('is what network-bandwidth validates with, and its error says what is expected', () => {
    const chaos = new Chaos({ seed: 1 });
    expect(chaos.validate({ kind: 'network-bandwidth', target: 'x', rate: '2mbps' }).params).toEqual({
      rate: 2_000_000,
      direction: 'both',
    });
    expect(chaos.validate({ kind: 'network-bandwidth', target: 'x', rate: 125000, direction: 'egress' }).params).toEqual({
      rate: 125000,
      direction: 'egress',
    });
    let err: unknown;
    try {
      chaos.validate({ kind: 'network-bandwidth', target: 'x', rate: '1 furlong' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toBe(
      'chaos.inject(network-bandwidth): rate is "1 furlong"; expected a rate from 1kbit to 100gbit: bytes per second as a number ' +
        "(e.g. 125000), or a string with a tc unit such as '1mbit', '500kbit' (bits/s) or '2mbps' (BYTES/s). Nothing was applied.",
    );
  });
});
