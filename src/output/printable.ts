/**
 * Text as it may be printed on a terminal: control characters (a newline in a file name, an escape
 * sequence that would drive the terminal) and the Unicode controls that reorder text are escaped,
 * so one name stays on one line and shows what is really there.
 *
 * @example
 * printable('a\nb.jpg') // 'a\\nb.jpg'
 */
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

// C0 and C1 controls, DEL, and the bidirectional formatting characters.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
