// Reports, progress lines and errors are read by people and kept by CI: a
// URL's password and the values of credential headers never reach them.

const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]*@/gi;
const CREDENTIAL_HEADER = /\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key)(["']?\s*[:=]\s*["']?)[^\r\n"',;}]+/gi;

/** The text with URL passwords and credential header values replaced by "***". */
export function redact(text: string): string {
  return text.replace(URL_PASSWORD, '$1:***@').replace(CREDENTIAL_HEADER, '$1$2***');
}

/** A URL for display: its password (and username's secret half) replaced by "***". */
export function redactUrl(url: string): string {
  return redact(url);
}
