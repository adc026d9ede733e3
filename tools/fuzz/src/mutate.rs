//! A small seeded mutator (no nightly, no sanitizer coverage): byte flips, interesting values,
//! insertions, deletions, duplicated ranges, truncation and splices of two corpus inputs. Same
//! seed, same inputs: a failure found in CI is found again with its seed and iteration.

/// xorshift64*: enough randomness for mutations, and reproducible everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// Inputs stay below this size: the readers' bounds are checked on what fits a corpus.
pub const MAX_LEN: usize = 64 * 1024;

/// Values that break length fields and counters.
const INTERESTING: &[&[u8]] = &[
    &[0x00],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0xff, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0x7f],
    &[0x00, 0x00, 0x00, 0x80],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    b"\xEF\xBB\xBF",
    b"\n",
    b"\"",
    b"[[[[[[[[[[[[[[[[",
    b"{\"a\":",
    b"1e400",
    b"123456789012345678901234567890",
    b"\\ud800",
    b"\xC3",
    b"= ",
    b"[run]\n",
];

/// One to eight mutations of `input` (a corpus entry), `other` the splice partner.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next_u64() as u8;
            }
            2 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(len + 1);
                match rng.below(2) {
                    0 => out.splice(i..i, v.iter().copied()).for_each(drop),
                    _ => {
                        let end = (i + v.len()).min(len);
                        out.splice(i..end, v.iter().copied()).for_each(drop);
                    }
                }
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                out.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let copy = out[i..i + n].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, copy).for_each(drop);
            }
            5 if len > 0 => out.truncate(rng.below(len)),
            6 if !other.is_empty() => {
                let (cut, from) = (rng.below(len + 1), rng.below(other.len()));
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            7 => {
                let n = 1 + rng.below(16);
                let i = rng.below(len + 1);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(i..i, bytes).for_each(drop);
            }
            _ if len > 0 => {
                // A little-endian number anywhere: length and offset fields.
                let i = rng.below(len);
                let v = INTERESTING[4 + rng.below(5)];
                for (k, b) in v.iter().enumerate() {
                    if let Some(x) = out.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
            _ => {}
        }
    }
    out.truncate(MAX_LEN);
    out
}
