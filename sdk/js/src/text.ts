// Text a node or a peer supplies, made safe to show: the code points the
// chain refuses in channel names (docs/chain.md section 2: a fixed list of
// controls, separators and invisible or reordering format characters, so
// implementations with different Unicode tables agree), and a bound on
// length.

/** The refused code points (one). */
export const INVISIBLE =
  /[\u{0}-\u{1f}\u{7f}-\u{9f}\u{ad}\u{600}-\u{605}\u{61c}\u{6dd}\u{70f}\u{890}-\u{891}\u{8e2}\u{180e}\u{200b}-\u{200f}\u{2028}-\u{202e}\u{2060}-\u{2064}\u{2066}-\u{206f}\u{feff}\u{fff9}-\u{fffb}\u{110bd}\u{110cd}\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'gu');

/** The most code points of a node's error message kept (the rest is cut, with "…"). */
export const MAX_NODE_MESSAGE = 300;

/**
 * Untrusted text for display: each refused code point (controls, line
 * breaks, bidirectional overrides, invisible characters) becomes U+FFFD,
 * lone surrogates too, and the text is cut to max code points. A node's
 * error message goes into an error's message and from there to a screen
 * or a log: it cannot reorder or hide what it says, nor flood either.
 */
export function displayText(s: string, max = MAX_NODE_MESSAGE): string {
  const cps = Array.from(s.toWellFormed().replace(INVISIBLE_ALL, '\uFFFD'));
  return cps.length > max ? cps.slice(0, max).join('') + '…' : cps.join('');
}
