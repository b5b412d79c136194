//! The input and output matrices: dense (`.bin`) and product-quantized (`.ftz`), in fastText
//! 0.9.2's layouts (src/densematrix.cc, quantmatrix.cc, productquantizer.cc).
//!
//! * dense: `int64 m, int64 n`, then `m*n` floats, row-major;
//! * quantized: `bool qnorm, int64 m, int64 n, int32 codesize`, `codesize` code bytes
//!   (`nsubq` per row), the product quantizer (`int32 dim, nsubq, dsub, lastdsub`, then
//!   `dim * 256` centroid floats), and with `qnorm` another `m` norm codes plus a 1-d quantizer.
//!   The last sub-quantizer may be narrower (`lastdsub`), and its centroids are packed at
//!   `m * 256 * dsub + code * lastdsub`.
//!
//! Training only ever uses dense matrices; quantized ones are read (and written back) for
//! prediction.
use crate::binio::{put_f32s, put_i32, put_i64, BinReader};
use crate::Result;
use std::io::{Read, Write};

/// Centroids per sub-quantizer (8-bit codes).
const KSUB: usize = 256;

/// A dense row-major float matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseMatrix {
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// `m * n` values.
    pub data: Vec<f32>,
}

impl DenseMatrix {
    /// A zero matrix.
    pub fn zeros(m: usize, n: usize) -> Self {
        DenseMatrix { m, n, data: zeroed_f32(m * n) }
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n..(i + 1) * self.n]
    }

    fn read<R: Read>(r: &mut BinReader<R>, what: &str) -> Result<Self> {
        let m = r.i64(&format!("{what}.m"))?;
        let n = r.i64(&format!("{what}.n"))?;
        if m < 0 || n < 0 || m.checked_mul(n).is_none_or(|x| x > 1 << 36) {
            return Err(r.bad(what, format!("implausible shape {m} x {n}")));
        }
        let data = r.f32s((m * n) as usize, what)?;
        Ok(DenseMatrix { m: m as usize, n: n as usize, data })
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        put_i64(w, self.m as i64)?;
        put_i64(w, self.n as i64)?;
        put_f32s(w, &self.data)
    }
}

/// A product quantizer: `nsubq` sub-vectors, each encoded as one of 256 centroids.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuantizer {
    dim: i32,
    nsubq: i32,
    dsub: i32,
    lastdsub: i32,
    centroids: Vec<f32>,
}

impl ProductQuantizer {
    fn read<R: Read>(r: &mut BinReader<R>, what: &str) -> Result<Self> {
        let dim = r.i32(&format!("{what}.dim"))?;
        let nsubq = r.i32(&format!("{what}.nsubq"))?;
        let dsub = r.i32(&format!("{what}.dsub"))?;
        let lastdsub = r.i32(&format!("{what}.lastdsub"))?;
        let ok = dim > 0
            && dim <= 1 << 20
            && nsubq > 0
            && dsub > 0
            && lastdsub > 0
            && lastdsub <= dsub
            && (nsubq - 1) as i64 * dsub as i64 + lastdsub as i64 == dim as i64;
        if !ok {
            return Err(r.bad(what, format!("inconsistent quantizer dim {dim} nsubq {nsubq} dsub {dsub} lastdsub {lastdsub}")));
        }
        let centroids = r.f32s(dim as usize * KSUB, &format!("{what}.centroids"))?;
        Ok(ProductQuantizer { dim, nsubq, dsub, lastdsub, centroids })
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        for v in [self.dim, self.nsubq, self.dsub, self.lastdsub] {
            put_i32(w, v)?;
        }
        put_f32s(w, &self.centroids)
    }

    #[inline]
    fn centroid(&self, m: usize, code: u8) -> &[f32] {
        let (dsub, last) = (self.dsub as usize, self.lastdsub as usize);
        if m == self.nsubq as usize - 1 {
            let s = m * KSUB * dsub + code as usize * last;
            &self.centroids[s..s + last]
        } else {
            let s = (m * KSUB + code as usize) * dsub;
            &self.centroids[s..s + dsub]
        }
    }

    fn add_code(&self, x: &mut [f32], codes: &[u8], alpha: f32) {
        let dsub = self.dsub as usize;
        for (m, &code) in codes.iter().enumerate() {
            let c = self.centroid(m, code);
            for (xv, cv) in x[m * dsub..m * dsub + c.len()].iter_mut().zip(c) {
                *xv += alpha * cv;
            }
        }
    }

    fn mul_code(&self, x: &[f32], codes: &[u8], alpha: f32) -> f32 {
        let dsub = self.dsub as usize;
        let mut res = 0.0f32;
        for (m, &code) in codes.iter().enumerate() {
            let c = self.centroid(m, code);
            for (xv, cv) in x[m * dsub..m * dsub + c.len()].iter().zip(c) {
                res += xv * cv;
            }
        }
        res * alpha
    }
}

/// A product-quantized matrix (`.ftz`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantMatrix {
    qnorm: bool,
    m: usize,
    n: usize,
    codes: Vec<u8>,
    pq: ProductQuantizer,
    norm_codes: Vec<u8>,
    npq: Option<ProductQuantizer>,
}

impl QuantMatrix {
    fn read<R: Read>(r: &mut BinReader<R>, what: &str) -> Result<Self> {
        let qnorm = r.u8(&format!("{what}.qnorm"))? != 0;
        let m = r.i64(&format!("{what}.m"))?;
        let n = r.i64(&format!("{what}.n"))?;
        let codesize = r.i32(&format!("{what}.codesize"))?;
        if m < 0 || n <= 0 || codesize < 0 || m > 1 << 34 {
            return Err(r.bad(what, format!("implausible shape {m} x {n}, codesize {codesize}")));
        }
        let mut codes = vec![0u8; codesize as usize];
        r.bytes(&mut codes, &format!("{what}.codes"))?;
        let pq = ProductQuantizer::read(r, &format!("{what}.pq"))?;
        if pq.dim as i64 != n || codesize as i64 != m * pq.nsubq as i64 {
            return Err(r.bad(what, format!("codesize {codesize} != rows {m} x nsubq {}", pq.nsubq)));
        }
        let (norm_codes, npq) = if qnorm {
            let mut nc = vec![0u8; m as usize];
            r.bytes(&mut nc, &format!("{what}.norm_codes"))?;
            let npq = ProductQuantizer::read(r, &format!("{what}.npq"))?;
            if npq.dim != 1 {
                return Err(r.bad(what, "norm quantizer must be 1-dimensional"));
            }
            (nc, Some(npq))
        } else {
            (Vec::new(), None)
        };
        Ok(QuantMatrix { qnorm, m: m as usize, n: n as usize, codes, pq, norm_codes, npq })
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&[self.qnorm as u8])?;
        put_i64(w, self.m as i64)?;
        put_i64(w, self.n as i64)?;
        put_i32(w, self.codes.len() as i32)?;
        w.write_all(&self.codes)?;
        self.pq.write(w)?;
        if let Some(npq) = &self.npq {
            w.write_all(&self.norm_codes)?;
            npq.write(w)?;
        }
        Ok(())
    }

    #[inline]
    fn norm(&self, i: usize) -> f32 {
        match &self.npq {
            Some(npq) => npq.centroid(0, self.norm_codes[i])[0],
            None => 1.0,
        }
    }

    #[inline]
    fn row_codes(&self, i: usize) -> &[u8] {
        let k = self.pq.nsubq as usize;
        &self.codes[i * k..(i + 1) * k]
    }
}

/// Either kind of matrix, with the two operations prediction needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// Plain floats.
    Dense(DenseMatrix),
    /// Product-quantized.
    Quant(QuantMatrix),
}

impl Matrix {
    /// Rows.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.m,
            Matrix::Quant(q) => q.m,
        }
    }
    /// Columns.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.n,
            Matrix::Quant(q) => q.n,
        }
    }

    /// `x += row(i)`.
    #[inline]
    pub fn add_row_to(&self, x: &mut [f32], i: usize) {
        match self {
            Matrix::Dense(d) => add(x, d.row(i)),
            Matrix::Quant(q) => q.pq.add_code(x, q.row_codes(i), q.norm(i)),
        }
    }

    /// `row(i) . x`.
    #[inline]
    pub fn dot_row(&self, x: &[f32], i: usize) -> f32 {
        match self {
            Matrix::Dense(d) => dot(d.row(i), x),
            Matrix::Quant(q) => q.pq.mul_code(x, q.row_codes(i), q.norm(i)),
        }
    }

    /// Prefetch row `i` into cache (a no-op for quantized rows and off x86-64).
    #[inline]
    pub fn prefetch_row(&self, i: usize) {
        if let Matrix::Dense(d) = self {
            prefetch(d.data.as_ptr().wrapping_add(i * d.n), d.n);
        }
    }

    /// Read a matrix; `quantized` is the flag byte that precedes it in the model file.
    pub fn read<R: Read>(r: &mut BinReader<R>, quantized: bool, what: &str) -> Result<Self> {
        if quantized {
            Ok(Matrix::Quant(QuantMatrix::read(r, what)?))
        } else {
            Ok(Matrix::Dense(DenseMatrix::read(r, what)?))
        }
    }

    /// Write the matrix (without the preceding flag byte).
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        match self {
            Matrix::Dense(d) => d.write(w),
            Matrix::Quant(q) => q.write(w),
        }
    }
}

/// `x += y`.
#[inline]
pub fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += *b;
    }
}

/// `x += a * y`.
#[inline]
pub fn axpy(x: &mut [f32], a: f32, y: &[f32]) {
    for (xv, yv) in x.iter_mut().zip(y) {
        *xv += a * *yv;
    }
}

/// Dot product with eight independent accumulators: the compiler keeps float sums in order, so
/// a single accumulator would serialise on the add latency; eight lanes vectorise.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// A zeroed vector of `n` floats whose pages the kernel may back with 2 MiB huge pages.
///
/// Why: the input matrix of a DeepSeekMath-sized model (2M n-gram buckets x dim 256) is 2 GB
/// read at random rows; with 4 KiB pages nearly every row is also a TLB miss (a page walk before
/// the cache miss). Linux's transparent huge pages are often `madvise`-only, so ask for them
/// before the first touch. A hint only: where it is refused, the vector is an ordinary one.
pub fn zeroed_f32(n: usize) -> Vec<f32> {
    let v = vec![0f32; n];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = n * std::mem::size_of::<f32>();
        if bytes >= 2 * HUGE {
            let start = v.as_ptr() as usize;
            let aligned = (start + HUGE - 1) & !(HUGE - 1);
            let len = (start + bytes - aligned) & !(HUGE - 1);
            if len > 0 {
                // SAFETY: the range lies inside `v`'s allocation; MADV_HUGEPAGE changes no
                // contents, only how untouched pages are backed.
                unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
            }
        }
    }
    v
}

/// Hint the CPU to fetch `len` floats starting at `p`. Rows of the input matrix are scattered
/// over gigabytes (hashed n-gram buckets), so each row is a cache miss; issuing the fetch for
/// the next row while summing the current one hides most of that latency.
#[inline]
pub fn prefetch(p: *const f32, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let mut off = 0;
        while off < len {
            // SAFETY: prefetch never faults, even on invalid addresses; `wrapping_add` avoids
            // forming an out-of-bounds pointer with `add`.
            unsafe { _mm_prefetch(p.wrapping_add(off) as *const i8, _MM_HINT_T0) };
            off += 16;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (p, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32).sin()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }

    #[test]
    fn quantized_row_uses_narrow_last_subquantizer() {
        // dim 5, dsub 2 -> nsubq 3, lastdsub 1; centroids laid out as fastText packs them.
        let mut centroids = vec![0f32; 5 * KSUB];
        for (i, c) in centroids.iter_mut().enumerate() {
            *c = i as f32;
        }
        let pq = ProductQuantizer { dim: 5, nsubq: 3, dsub: 2, lastdsub: 1, centroids };
        let q = QuantMatrix {
            qnorm: false,
            m: 1,
            n: 5,
            codes: vec![1, 2, 3],
            pq,
            norm_codes: vec![],
            npq: None,
        };
        let m = Matrix::Quant(q);
        let mut x = vec![0f32; 5];
        m.add_row_to(&mut x, 0);
        // sub 0 code 1 -> [2,3]; sub 1 code 2 -> (256+2)*2 = 516 -> [516,517]; last: 2*256*2 + 3.
        assert_eq!(x, vec![2.0, 3.0, 516.0, 517.0, 1027.0]);
        assert_eq!(m.dot_row(&[1.0; 5], 0), 2.0 + 3.0 + 516.0 + 517.0 + 1027.0);
    }
}
