/**
 * Credentials in source URLs never leave the service: every source shown (API answers, logs,
 * errors, page) and every message that may quote one goes through these.
 */

/** Any "scheme://user[:password]@" in a text. */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/@?#]*@/gi;
/** Query parameters that commonly carry secrets (?password=..., &token=...). */
const SECRET_QUERY = /([?&](?:user(?:name)?|pass(?:word)?|pwd|token|key|api_?key|auth|secret|sig(?:nature)?)=)[^&#\s]*/gi;

/** The URL with its user name, password and secret query values replaced by "***". */
export function redactSource(source: string): string {
  return source.replace(USERINFO, '$1***@').replace(SECRET_QUERY, '$1***');
}

/** A message with every credential of every URL in it (and the given sources, verbatim or percent-decoded) replaced. */
export function redactText(text: string, sources: readonly string[] = []): string {
  let out = text;
  for (const source of sources) {
    const safe = redactSource(source);
    if (safe === source) continue;
    out = out.split(source).join(safe);
    try {
      const decoded = decodeURIComponent(source);
      if (decoded !== source) out = out.split(decoded).join(safe);
    } catch {
      // not percent-encoded
    }
  }
  return redactSource(out);
}
