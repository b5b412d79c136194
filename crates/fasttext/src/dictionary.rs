//! The vocabulary and the text-to-feature mapping of fastText 0.9.2 (src/dictionary.cc).
//!
//! Facts reproduced here, because a `.bin` trained elsewhere only predicts identically if every
//! one of them matches:
//! * tokens are split on the bytes ` \n\r\t\v\f\0`; each `\n` is itself the token `</s>` (EOS),
//!   which is a word like any other and ends a line;
//! * a token starting with the label prefix (`__label__`) is a label; words sort before labels,
//!   each group by descending count; `minCount`/`minCountLabel` drop rare entries;
//! * the hash is 32-bit FNV-1a over the bytes taken as *signed* chars (so UTF-8 bytes >= 0x80 are
//!   sign-extended before the xor);
//! * word n-gram `i..j` hashes as `h = h * 116049371 + hash_j` in 64-bit arithmetic where each
//!   32-bit word hash is sign-extended, then `h % bucket` indexes row `nwords + bucket_id`;
//! * char n-grams of `<word>` (lengths `minn..=maxn`, counted in UTF-8 characters, skipping the
//!   lone `<` and `>`) hash the same way, `hash(ngram) % bucket`;
//! * out-of-vocabulary words contribute no word row but still take part in word n-grams;
//! * `.ftz` files carry `pruneidx`, a map from original bucket to kept bucket; unknown buckets drop.
//!
//! The dictionary layout on disk: `int32 size, nwords, nlabels; int64 ntokens, pruneidx_size`,
//! then per entry the NUL-terminated bytes, `int64 count`, `int8 type`, then `pruneidx_size`
//! `(int32, int32)` pairs. Lookups use our own open-addressing table keyed by the FNV hash
//! (fastText's fixed 30M-slot table is an implementation detail, not part of the format).
use crate::binio::{put_i32, put_i64, BinReader};
use crate::Result;
use std::collections::HashMap;
use std::io::{Read, Write};

/// The end-of-sentence token every newline produces.
pub const EOS: &[u8] = b"</s>";
const BOW: u8 = b'<';
const EOW: u8 = b'>';
/// fastText's vocabulary cap: while reading, it raises the count threshold once the vocabulary
/// passes 75% of this.
const MAX_VOCAB_SIZE: usize = 30_000_000;

/// Whether a dictionary entry is a word or a label (on-disk values 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// An input token.
    Word = 0,
    /// A `__label__...` target.
    Label = 1,
}

/// One vocabulary entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The token's bytes (fastText does not require UTF-8).
    pub word: Vec<u8>,
    /// Occurrences in the training data.
    pub count: i64,
    /// Word or label.
    pub kind: EntryType,
    /// Input rows for this word: itself plus its char n-gram buckets (empty when `maxn == 0`).
    subwords: Vec<i32>,
}

/// fastText's string hash: FNV-1a over signed chars.
#[inline]
pub fn hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= (b as i8) as i32 as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// fastText's token separators.
#[inline]
pub fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

/// Call `f` on each whitespace-separated token of `line` (which should not contain `\n`, or
/// if it does, `\n` is treated as a plain separator).
#[inline]
pub fn for_each_token(line: &[u8], mut f: impl FnMut(&[u8])) {
    let mut i = 0;
    let n = line.len();
    while i < n {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        let start = i;
        while i < n && !is_space(line[i]) {
            i += 1;
        }
        if i > start {
            f(&line[start..i]);
        }
    }
}

/// Reusable buffers for turning one line into input rows and label ids.
#[derive(Debug, Default, Clone)]
pub struct LineBuf {
    /// Input-matrix rows (words, char n-grams, word n-grams).
    pub words: Vec<i32>,
    /// Label ids (0-based among labels).
    pub labels: Vec<i32>,
    hashes: Vec<i32>,
}

/// The vocabulary plus the feature rules (`wordNgrams`, `bucket`, `minn`, `maxn`, label prefix).
#[derive(Debug, Clone)]
pub struct Dictionary {
    entries: Vec<Entry>,
    nwords: i32,
    nlabels: i32,
    ntokens: i64,
    pruneidx_size: i64,
    pruneidx: HashMap<i32, i32>,
    /// `pruneidx` in file order (fastText writes its hash map's iteration order; keeping it
    /// makes a rewritten `.ftz` byte-identical).
    pruneidx_order: Vec<(i32, i32)>,
    /// Open-addressing table of entry ids (-1 empty), indexed by a mix of the FNV hash.
    table: Vec<i32>,
    table_bits: u32,
    label: Vec<u8>,
    word_ngrams: i32,
    bucket: i32,
    minn: i32,
    maxn: i32,
}

impl Dictionary {
    /// An empty dictionary with the feature rules of `args`.
    pub fn new(args: &crate::Args) -> Self {
        let mut d = Dictionary {
            entries: Vec::new(),
            nwords: 0,
            nlabels: 0,
            ntokens: 0,
            pruneidx_size: -1,
            pruneidx: HashMap::new(),
            pruneidx_order: Vec::new(),
            table: Vec::new(),
            table_bits: 0,
            label: args.label.as_bytes().to_vec(),
            word_ngrams: args.word_ngrams,
            bucket: args.bucket,
            minn: args.minn,
            maxn: args.maxn,
        };
        d.resize_table(1 << 10);
        d
    }

    /// Number of words (input vocabulary, `</s>` included).
    pub fn nwords(&self) -> i32 {
        self.nwords
    }
    /// Number of labels.
    pub fn nlabels(&self) -> i32 {
        self.nlabels
    }
    /// Tokens seen while building (labels and `</s>` included): the lr schedule's unit.
    pub fn ntokens(&self) -> i64 {
        self.ntokens
    }
    /// All entries: words first, then labels.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// Whether this is a pruned (`.ftz`) dictionary.
    pub fn is_pruned(&self) -> bool {
        self.pruneidx_size >= 0
    }
    /// The label string of label id `i` (0-based among labels).
    pub fn label(&self, i: i32) -> &[u8] {
        &self.entries[(self.nwords + i) as usize].word
    }
    /// Counts of all entries of one kind, in id order.
    pub fn counts(&self, kind: EntryType) -> Vec<i64> {
        self.entries.iter().filter(|e| e.kind == kind).map(|e| e.count).collect()
    }

    fn resize_table(&mut self, cap: usize) {
        let cap = cap.next_power_of_two().max(16);
        self.table = vec![-1; cap];
        self.table_bits = cap.trailing_zeros();
        for (i, e) in self.entries.iter().enumerate() {
            let slot = Self::find_in(&self.table, self.table_bits, &self.entries, &e.word, hash(&e.word));
            self.table[slot] = i as i32;
        }
    }

    #[inline]
    fn find_in(table: &[i32], bits: u32, entries: &[Entry], w: &[u8], h: u32) -> usize {
        let mask = table.len() - 1;
        // The FNV low bits are poor for power-of-two tables; a multiplicative mix spreads them.
        let mut slot = ((h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize;
        loop {
            let id = table[slot];
            if id < 0 || entries[id as usize].word == w {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The entry id of `w` (with precomputed `hash(w)`), or -1.
    #[inline]
    pub fn id_hashed(&self, w: &[u8], h: u32) -> i32 {
        self.table[Self::find_in(&self.table, self.table_bits, &self.entries, w, h)]
    }

    /// The entry id of `w`, or -1.
    pub fn id(&self, w: &[u8]) -> i32 {
        self.id_hashed(w, hash(w))
    }

    fn kind_of(&self, w: &[u8]) -> EntryType {
        if w.starts_with(&self.label) {
            EntryType::Label
        } else {
            EntryType::Word
        }
    }

    /// Count one token (building the vocabulary).
    pub fn add(&mut self, w: &[u8]) {
        self.add_count(w, 1);
    }

    fn add_count(&mut self, w: &[u8], count: i64) {
        let h = hash(w);
        let slot = Self::find_in(&self.table, self.table_bits, &self.entries, w, h);
        self.ntokens += count;
        let id = self.table[slot];
        if id >= 0 {
            self.entries[id as usize].count += count;
            return;
        }
        let kind = self.kind_of(w);
        self.entries.push(Entry { word: w.to_vec(), count, kind, subwords: Vec::new() });
        self.table[slot] = (self.entries.len() - 1) as i32;
        if self.entries.len() * 2 > self.table.len() {
            self.resize_table(self.table.len() * 2);
        }
    }

    /// Count every token of a text (one `</s>` per `\n`), as fastText's `readFromFile`.
    pub fn add_text(&mut self, text: &[u8]) {
        let mut min_threshold = 1;
        for line in text.split_inclusive(|&c| c == b'\n') {
            let (body, eos) = match line.last() {
                Some(b'\n') => (&line[..line.len() - 1], true),
                _ => (line, false),
            };
            for_each_token(body, |t| self.add(t));
            if eos {
                self.add(EOS);
            }
            if self.entries.len() as f64 > 0.75 * MAX_VOCAB_SIZE as f64 {
                min_threshold += 1;
                self.threshold(min_threshold, min_threshold);
            }
        }
    }

    /// Merge the counts of another dictionary built with the same rules (parallel counting).
    pub fn merge(&mut self, other: &Dictionary) {
        let before = self.ntokens;
        for e in &other.entries {
            self.add_count(&e.word, e.count);
        }
        self.ntokens = before + other.ntokens;
    }

    /// Drop words seen fewer than `t` times and labels fewer than `tl` times; sort words before
    /// labels, each by descending count (fastText's `threshold`). Ties keep first-seen order.
    pub fn threshold(&mut self, t: i64, tl: i64) {
        self.entries.sort_by(|a, b| (a.kind as u8).cmp(&(b.kind as u8)).then(b.count.cmp(&a.count)));
        self.entries.retain(|e| match e.kind {
            EntryType::Word => e.count >= t,
            EntryType::Label => e.count >= tl,
        });
        self.entries.shrink_to_fit();
        self.nwords = self.entries.iter().filter(|e| e.kind == EntryType::Word).count() as i32;
        self.nlabels = self.entries.len() as i32 - self.nwords;
        let cap = (self.entries.len() * 2).max(16);
        self.resize_table(cap);
    }

    /// Precompute each word's char n-gram rows (fastText's `initNgrams`).
    pub fn init_ngrams(&mut self) {
        for i in 0..self.entries.len() {
            let mut sub = vec![i as i32];
            if self.entries[i].word != EOS && self.maxn > 0 {
                let mut w = Vec::with_capacity(self.entries[i].word.len() + 2);
                w.push(BOW);
                w.extend_from_slice(&self.entries[i].word);
                w.push(EOW);
                self.compute_subwords(&w, &mut sub);
            }
            self.entries[i].subwords = sub;
        }
    }

    /// The input rows of entry `i` (itself plus its char n-grams) into `buf.words`.
    pub fn subword_rows(&self, i: usize, buf: &mut LineBuf) {
        buf.words.clear();
        if self.entries[i].subwords.is_empty() {
            buf.words.push(i as i32);
        } else {
            buf.words.extend_from_slice(&self.entries[i].subwords);
        }
    }

    #[inline]
    fn push_hash(&self, out: &mut Vec<i32>, id: i32) {
        if self.pruneidx_size == 0 || id < 0 {
            return;
        }
        let id = if self.pruneidx_size > 0 {
            match self.pruneidx.get(&id) {
                Some(&v) => v,
                None => return,
            }
        } else {
            id
        };
        out.push(self.nwords + id);
    }

    fn compute_subwords(&self, word: &[u8], out: &mut Vec<i32>) {
        if self.bucket <= 0 {
            return;
        }
        let n_bytes = word.len();
        let mut ngram = Vec::new();
        for i in 0..n_bytes {
            if word[i] & 0xC0 == 0x80 {
                continue;
            }
            ngram.clear();
            let mut j = i;
            let mut n = 1;
            while j < n_bytes && n <= self.maxn {
                ngram.push(word[j]);
                j += 1;
                while j < n_bytes && word[j] & 0xC0 == 0x80 {
                    ngram.push(word[j]);
                    j += 1;
                }
                if n >= self.minn && !(n == 1 && (i == 0 || j == n_bytes)) {
                    let h = hash(&ngram) % self.bucket as u32;
                    self.push_hash(out, h as i32);
                }
                n += 1;
            }
        }
    }

    #[inline]
    fn add_token(&self, buf: &mut LineBuf, token: &[u8]) {
        let h = hash(token);
        let wid = self.id_hashed(token, h);
        let kind = if wid < 0 { self.kind_of(token) } else { self.entries[wid as usize].kind };
        match kind {
            EntryType::Word => {
                if wid < 0 {
                    if token != EOS && self.maxn > 0 {
                        let mut w = Vec::with_capacity(token.len() + 2);
                        w.push(BOW);
                        w.extend_from_slice(token);
                        w.push(EOW);
                        self.compute_subwords(&w, &mut buf.words);
                    }
                } else if self.maxn <= 0 {
                    buf.words.push(wid);
                } else {
                    buf.words.extend_from_slice(&self.entries[wid as usize].subwords);
                }
                buf.hashes.push(h as i32);
            }
            EntryType::Label => {
                if wid >= 0 {
                    buf.labels.push(wid - self.nwords);
                }
            }
        }
    }

    /// Turn one line into input rows and labels (fastText's supervised `getLine`): `line`
    /// holds the tokens without the newline; `eos` says whether a newline ended it (then the
    /// `</s>` token is appended, as fastText reads it). Returns the number of tokens read.
    pub fn line(&self, line: &[u8], eos: bool, buf: &mut LineBuf) -> i64 {
        buf.words.clear();
        buf.labels.clear();
        buf.hashes.clear();
        let mut ntokens = 0i64;
        for_each_token(line, |t| {
            ntokens += 1;
            self.add_token(buf, t);
        });
        if eos {
            ntokens += 1;
            self.add_token(buf, EOS);
        }
        self.add_word_ngrams(buf);
        ntokens
    }

    fn add_word_ngrams(&self, buf: &mut LineBuf) {
        if self.word_ngrams <= 1 || self.bucket <= 0 {
            return;
        }
        let n = buf.hashes.len();
        let bucket = self.bucket as u64;
        for i in 0..n {
            // fastText stores the 32-bit hashes in an int32 vector and widens them to uint64:
            // sign extension is part of the format.
            let mut h = buf.hashes[i] as i64 as u64;
            let end = n.min(i + self.word_ngrams as usize);
            for j in i + 1..end {
                h = h.wrapping_mul(116_049_371).wrapping_add(buf.hashes[j] as i64 as u64);
                let id = (h % bucket) as i32;
                if self.pruneidx_size == 0 {
                    continue;
                }
                let id = if self.pruneidx_size > 0 {
                    match self.pruneidx.get(&id) {
                        Some(&v) => v,
                        None => continue,
                    }
                } else {
                    id
                };
                buf.words.push(self.nwords + id);
            }
        }
    }

    /// Write the dictionary block.
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        put_i32(w, self.entries.len() as i32)?;
        put_i32(w, self.nwords)?;
        put_i32(w, self.nlabels)?;
        put_i64(w, self.ntokens)?;
        put_i64(w, self.pruneidx_size)?;
        for e in &self.entries {
            w.write_all(&e.word)?;
            w.write_all(&[0])?;
            put_i64(w, e.count)?;
            w.write_all(&[e.kind as u8])?;
        }
        for &(k, v) in &self.pruneidx_order {
            put_i32(w, k)?;
            put_i32(w, v)?;
        }
        Ok(())
    }

    /// Read the dictionary block; `args` supplies the feature rules stored in the args block.
    pub fn read<R: Read>(r: &mut BinReader<R>, args: &crate::Args) -> Result<Self> {
        let size = r.i32("dictionary.size")?;
        let nwords = r.i32("dictionary.nwords")?;
        let nlabels = r.i32("dictionary.nlabels")?;
        let ntokens = r.i64("dictionary.ntokens")?;
        let pruneidx_size = r.i64("dictionary.pruneidx_size")?;
        if size < 0 || nwords < 0 || nlabels < 0 || size as i64 != nwords as i64 + nlabels as i64 {
            return Err(r.bad(
                "dictionary.size",
                format!("size {size} != nwords {nwords} + nlabels {nlabels}"),
            ));
        }
        let mut d = Dictionary::new(args);
        d.entries.reserve(size as usize);
        for i in 0..size {
            let field = format!("dictionary entry {i}");
            let word = r.cstr(&field)?;
            let count = r.i64(&field)?;
            let kind = match r.u8(&field)? {
                0 => EntryType::Word,
                1 => EntryType::Label,
                t => return Err(r.bad(&field, format!("entry type {t} is neither word (0) nor label (1)"))),
            };
            let expected = if i < nwords { EntryType::Word } else { EntryType::Label };
            if kind != expected {
                return Err(r.bad(&field, "words must precede labels"));
            }
            d.entries.push(Entry { word, count, kind, subwords: Vec::new() });
        }
        if pruneidx_size > (1 << 31) {
            return Err(r.bad("dictionary.pruneidx_size", format!("implausible {pruneidx_size}")));
        }
        for _ in 0..pruneidx_size.max(0) {
            let k = r.i32("dictionary.pruneidx")?;
            let v = r.i32("dictionary.pruneidx")?;
            d.pruneidx.insert(k, v);
            d.pruneidx_order.push((k, v));
        }
        d.nwords = nwords;
        d.nlabels = nlabels;
        d.ntokens = ntokens;
        d.pruneidx_size = pruneidx_size;
        d.resize_table((size as usize * 2).max(16));
        d.init_ngrams();
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_signed_chars() {
        // FNV-1a reference value for ASCII, and a UTF-8 byte where sign extension matters:
        // with unsigned xor the result would be 0x050c5d3f-style; we pin fastText's value.
        assert_eq!(hash(b""), 2_166_136_261);
        assert_eq!(hash(b"a"), 0xe40c292c);
        let signed = hash("é".as_bytes());
        let mut unsigned: u32 = 2_166_136_261;
        for &b in "é".as_bytes() {
            unsigned ^= b as u32;
            unsigned = unsigned.wrapping_mul(16_777_619);
        }
        assert_ne!(signed, unsigned);
    }

    #[test]
    fn words_before_labels_by_count_and_min_count() {
        let mut a = crate::Args::supervised();
        a.word_ngrams = 2;
        let mut d = Dictionary::new(&a);
        d.add_text(b"__label__b x y y\n__label__a y z\n__label__b y\n");
        d.threshold(2, 1);
        let words: Vec<_> = d.entries().iter().map(|e| String::from_utf8_lossy(&e.word).into_owned()).collect();
        assert_eq!(words, ["y", "</s>", "__label__b", "__label__a"]);
        assert_eq!(d.nwords(), 2);
        assert_eq!(d.nlabels(), 2);
        assert_eq!(d.ntokens(), 12);
        let mut buf = LineBuf::default();
        let n = d.line(b"__label__a y q y", true, &mut buf);
        assert_eq!(n, 5);
        assert_eq!(buf.labels, [1]);
        // y, y, </s> + 3 bigrams (q is unknown but still hashed into bigrams).
        assert_eq!(buf.words.len(), 3 + 3);
        assert_eq!(&buf.words[..3], &[0, 0, 1]);
        assert!(buf.words[3..].iter().all(|&r| r >= 2 && r < 2 + a.bucket));
    }
}
