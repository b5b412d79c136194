//! Little-endian primitive IO for fastText's binary model layout.
//!
//! fastText writes its structs with `ostream::write` of native-endian `int32_t`, `int64_t`,
//! `float`, `double` and one-byte `bool`s (src/args.cc, dictionary.cc, densematrix.cc); every
//! platform it ships on is little-endian, so the layout is little-endian. Reads go through
//! [`BinReader`], which remembers the path and names the field in every error, so a truncated or
//! foreign file reports *where* it went wrong instead of panicking.
use crate::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A reader of fastText binary fields that names the file and field on error.
pub struct BinReader<R> {
    inner: R,
    path: PathBuf,
}

impl<R: Read> BinReader<R> {
    /// Wrap `inner`, which was opened from `path` (used in error messages only).
    pub fn new(inner: R, path: impl AsRef<Path>) -> Self {
        BinReader { inner, path: path.as_ref().to_path_buf() }
    }

    /// An error about `field` in this file.
    pub fn bad(&self, field: &str, message: impl Into<String>) -> Error {
        Error::BadModel { path: self.path.clone(), field: field.to_string(), message: message.into() }
    }

    /// Fill `buf` completely or fail naming `field`.
    pub fn bytes(&mut self, buf: &mut [u8], field: &str) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.bad(field, "file ends early (truncated?)")
            } else {
                Error::io(&self.path, e)
            }
        })
    }

    /// An `int32_t`.
    pub fn i32(&mut self, field: &str) -> Result<i32> {
        let mut b = [0u8; 4];
        self.bytes(&mut b, field)?;
        Ok(i32::from_le_bytes(b))
    }

    /// An `int64_t`.
    pub fn i64(&mut self, field: &str) -> Result<i64> {
        let mut b = [0u8; 8];
        self.bytes(&mut b, field)?;
        Ok(i64::from_le_bytes(b))
    }

    /// A `double`.
    pub fn f64(&mut self, field: &str) -> Result<f64> {
        let mut b = [0u8; 8];
        self.bytes(&mut b, field)?;
        Ok(f64::from_le_bytes(b))
    }

    /// A one-byte `bool` or `int8_t`.
    pub fn u8(&mut self, field: &str) -> Result<u8> {
        let mut b = [0u8; 1];
        self.bytes(&mut b, field)?;
        Ok(b[0])
    }

    /// `n` `float`s.
    pub fn f32s(&mut self, n: usize, field: &str) -> Result<Vec<f32>> {
        let mut out = crate::matrix::zeroed_f32(n);
        // Read in bounded chunks so a lying size field fails on EOF rather than first
        // allocating; the vector above is the only allocation and is sized by the caller.
        let mut bytes = vec![0u8; 1 << 20];
        let mut done = 0;
        while done < n {
            let take = (n - done).min(bytes.len() / 4);
            self.bytes(&mut bytes[..take * 4], field)?;
            for (o, c) in out[done..done + take].iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            done += take;
        }
        Ok(out)
    }

    /// A NUL-terminated byte string (dictionary words).
    pub fn cstr(&mut self, field: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let c = self.u8(field)?;
            if c == 0 {
                return Ok(out);
            }
            out.push(c);
        }
    }
}

/// Write an `int32_t`.
pub fn put_i32(w: &mut impl Write, v: i32) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

/// Write an `int64_t`.
pub fn put_i64(w: &mut impl Write, v: i64) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

/// Write a `double`.
pub fn put_f64(w: &mut impl Write, v: f64) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

/// Write floats in little-endian order, buffered in chunks.
pub fn put_f32s(w: &mut impl Write, v: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 20);
    for chunk in v.chunks(1 << 18) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}
