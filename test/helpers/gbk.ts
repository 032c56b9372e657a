/**
 * A GBK encoder for tests and benchmarks, built by inverting Node's own GBK decoder over every
 * two-byte code (Node can decode GBK but not encode it). Only what the decoder maps is encodable.
 */
let table: Map<string, number> | null = null;

function buildTable(): Map<string, number> {
  const map = new Map<string, number>();
  const decoder = new TextDecoder('gbk', { fatal: true });
  for (let lead = 0x81; lead <= 0xfe; lead++) {
    for (let trail = 0x40; trail <= 0xfe; trail++) {
      if (trail === 0x7f) continue;
      try {
        const ch = decoder.decode(Uint8Array.of(lead, trail));
        if (ch.length >= 1 && !map.has(ch)) map.set(ch, (lead << 8) | trail);
      } catch {
        // not a character
      }
    }
  }
  return map;
}

export function gbkEncode(text: string): Buffer {
  table ??= buildTable();
  const out: number[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) {
      out.push(c);
      continue;
    }
    const code = table.get(ch);
    if (code === undefined) throw new Error(`not encodable in GBK: ${ch}`);
    out.push(code >> 8, code & 0xff);
  }
  return Buffer.from(out);
}
