// A shared response as XMLHttpRequest and fetch present one: its header
// list (from the manifest), its MIME type and charset, and its text
// decoded as XHR decodes (byte order mark, then charset, then UTF-8).

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HTTP_WS = /[\t\n\r ]/;
const trimEnd = (s) => s.replace(/[\t\n\r ]+$/, '');

/**
 * Parses a MIME type as the WHATWG MIME Sniffing standard does.
 * @returns {{type: string, subtype: string, params: Map<string, string>}|null}
 */
export function parseMime(input) {
  const s = String(input).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
  const slash = s.indexOf('/');
  let end = s.indexOf(';');
  if (end < 0) end = s.length;
  if (slash < 1 || slash > end) return null;
  const type = s.slice(0, slash), subtype = trimEnd(s.slice(slash + 1, end));
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return null;
  const m = { type: type.toLowerCase(), subtype: subtype.toLowerCase(), params: new Map() };
  let i = end;
  while (i < s.length) {
    i++;
    while (HTTP_WS.test(s[i] || '')) i++;
    let j = i;
    while (j < s.length && s[j] !== ';' && s[j] !== '=') j++;
    const name = s.slice(i, j).toLowerCase();
    i = j;
    if (s[i] !== '=') continue;
    i++;
    let value = '';
    if (s[i] === '"') {
      for (i++; i < s.length; i++) {
        if (s[i] === '"') break;
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i];
      }
      while (i < s.length && s[i] !== ';') i++;
    } else {
      j = s.indexOf(';', i);
      if (j < 0) j = s.length;
      value = trimEnd(s.slice(i, j));
      i = j;
      if (!value) continue;
    }
    if (name && TOKEN.test(name) && /^[\t\x20-\x7e\x80-\xff]*$/.test(value) && !m.params.has(name)) m.params.set(name, value);
  }
  return m;
}

export const essence = (m) => m.type + '/' + m.subtype;
export const isXML = (m) => !!m && (m.subtype.endsWith('+xml') || essence(m) === 'text/xml' || essence(m) === 'application/xml');
export const isHTML = (m) => !!m && essence(m) === 'text/html';

/** The header list of a shared response: lowercase name → value. */
export function sharedHeaders(m) {
  const h = new Map();
  if (m.headers && typeof m.headers === 'object') {
    for (const [k, v] of Object.entries(m.headers)) if (typeof v === 'string') h.set(k.toLowerCase(), v);
  } else { // a module that does not send headers yet
    h.set('content-length', String(m.size));
    if (m.contentType) h.set('content-type', m.contentType);
    if (m.etag) h.set('etag', m.etag);
    if (m.lastModified) h.set('last-modified', m.lastModified);
  }
  if (m.responseDate && !h.has('date')) h.set('date', m.responseDate);
  h.delete('set-cookie');
  h.delete('set-cookie2');
  return h;
}

/** getAllResponseHeaders() of a header list: sorted, "name: value\r\n" each. */
export const allHeaders = (h) => (h ? [...h].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}: ${v}\r\n`).join('') : '');

// xmlEncoding reads the encoding of an XML declaration at the start of bytes.
function xmlEncoding(head) {
  const s = String.fromCharCode(...head.subarray(0, 1024));
  const m = /^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(s);
  return m && m[1];
}

/**
 * The TextDecoder for an XHR text response whose first bytes are head:
 * a byte order mark wins, then the charset label, then (xml) the XML
 * declaration, then UTF-8. Unknown labels count as absent.
 */
export function textDecoder(head, label, xml) {
  const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 'utf-8'
    : head[0] === 0xfe && head[1] === 0xff ? 'utf-16be'
      : head[0] === 0xff && head[1] === 0xfe ? 'utf-16le' : null;
  for (const l of [bom, label, xml && xmlEncoding(head)]) {
    if (!l) continue;
    try {
      return new TextDecoder(l);
    } catch { /* unknown or "replacement": the next rule decides */ }
  }
  return new TextDecoder();
}
