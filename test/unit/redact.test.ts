import { describe, expect, it } from 'vitest';
import { ChaosSpecError } from '../../src/contracts/errors.js';
import { redact } from '../../src/contracts/redact.js';
import { runProbeOnce } from '../../src/steady-state/probes.js';

describe('redact', () => {
  it('hides URL passwords and credential header values, and nothing else', () => {
    expect(redact('GET http://alice:s3cret@api:8080/x?y=1 failed')).toBe('GET http://alice:***@api:8080/x?y=1 failed');
    expect(redact('postgres://u:p%40ss@db/x and https://plain.host/a:b@c')).toBe('postgres://u:***@db/x and https://plain.host/a:b@c');
    expect(redact('Authorization: Bearer abc.def\r\nCookie: sid=1; b=2\r\nHost: x')).toBe(
      'Authorization: ***\r\nCookie: ***; b=2\r\nHost: x',
    );
    expect(redact('{"headers":{"authorization":"Basic Zm9v","accept":"*/*"}}')).toBe('{"headers":{"authorization":"***","accept":"*/*"}}');
    expect(redact('http://api:8080/ ok')).toBe('http://api:8080/ ok');
  });

  it('keeps passwords and credential headers out of spec errors', () => {
    const e = new ChaosSpecError('chaos.experiment', [
      { field: 'steadyState.load.url', value: 'ftp://bob:hunter2@x/', expected: 'an absolute http(s) URL' },
      { field: 'steadyState.load.headers', value: { Authorization: 'Bearer tok' }, expected: 'strings' },
    ]);
    expect(e.message).not.toContain('hunter2');
    expect(e.message).not.toContain('Bearer tok');
    expect(e.message).toContain('ftp://bob:***@x/');
  });

  it("keeps a probe URL's password out of the probe's error", async () => {
    const err = await runProbeOnce(
      { name: 'http://u:pw@127.0.0.1:1/', http: { url: 'http://u:pw@127.0.0.1:1/' } },
      AbortSignal.timeout(1000),
    ).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).not.toBeNull(); // fetch refuses a URL with credentials, and says the URL
    expect(redact(`probe: ${err!.message}`)).not.toContain('pw@');
  });
});
