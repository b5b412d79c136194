//! Reading and writing [`Document`]s as JSON Lines (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`) or
//! Parquet (`.parquet`), chosen by file name.
//!
//! Both layouts follow Hugging Face `datasets`: one document per line/row with the columns `id`,
//! `url`, `text`, and one column per metadata field (`score`, `domain`, `round`, ...), so a corpus
//! written here loads with `datasets.load_dataset("parquet", ...)` / `("json", ...)` unchanged.
//!
//! Parquet needs a fixed schema, while [`Document::metadata`] is free-form. The writer therefore
//! buffers the first rows (up to [`PARQUET_ROW_GROUP`] documents), infers one column type per
//! metadata key from them (boolean, int64, float64, string; anything else is stored as a JSON
//! string and listed in the file's key-value metadata under `mathforge.json_columns`), and keeps
//! that schema for the rest of the file. A later key, or a value that does not fit its column's
//! type, goes into the nullable `metadata_extra` column as a JSON object, so nothing is lost: the
//! reader merges it back. Reading accepts any Parquet file with a `text` column (other Arrow
//! types are read as their display string).
//!
//! A bad JSONL line does not end the read: it is yielded as an `Err` naming `file:line` and the
//! next line follows, so stages can skip and count (a truncated compressed file ends the read
//! after its error).
use crate::document::Document;
use crate::error::{Error, Result};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use mathforge_io::atomic::AtomicFile;
use mathforge_io::jsonl::{JsonlReader, JsonlWriter};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per Parquet row group (and rows buffered before the schema is fixed).
pub const PARQUET_ROW_GROUP: usize = 8192;

/// Key-value metadata key listing the columns stored as JSON strings.
pub const JSON_COLUMNS_KEY: &str = "mathforge.json_columns";

/// Column that carries metadata fields which did not fit the inferred schema.
pub const EXTRA_COLUMN: &str = "metadata_extra";

/// On-disk layout of a document file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    /// JSON Lines, optionally `.gz` / `.zst` compressed.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl DocFormat {
    /// Tell the format from a file name (`x.parquet`, `x.jsonl[.gz|.zst]`, `x.json[.gz|.zst]`, `x.ndjson`).
    pub fn from_path(path: &Path) -> Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let base = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".zst"))
            .or_else(|| name.strip_suffix(".zstd"))
            .unwrap_or(&name);
        if name.ends_with(".parquet") {
            Ok(DocFormat::Parquet)
        } else if base.ends_with(".jsonl") || base.ends_with(".json") || base.ends_with(".ndjson") {
            Ok(DocFormat::Jsonl)
        } else {
            Err(Error::UnknownFormat {
                path: path.to_path_buf(),
                expected: ".jsonl, .jsonl.gz, .jsonl.zst or .parquet",
            })
        }
    }
}

/// Read documents from a JSONL(.gz/.zst) or Parquet file. An error opening the file is yielded
/// as the single item; per-record errors are yielded in place and reading continues.
pub fn read_documents(path: impl AsRef<Path>) -> DocumentReader {
    let path = path.as_ref();
    match DocumentReader::open(path) {
        Ok(r) => r,
        Err(e) => DocumentReader { path: path.to_path_buf(), inner: Inner::Failed(Some(e)) },
    }
}

/// Streaming reader of documents; see [`read_documents`].
pub struct DocumentReader {
    path: PathBuf,
    inner: Inner,
}

enum Inner {
    Jsonl(JsonlReader),
    Parquet(ParquetRows),
    Failed(Option<Error>),
}

impl DocumentReader {
    /// Open `path`, failing early if it cannot be opened or its format is unknown.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let inner = match DocFormat::from_path(&path)? {
            DocFormat::Jsonl => Inner::Jsonl(JsonlReader::open(&path)?),
            DocFormat::Parquet => Inner::Parquet(ParquetRows::open(&path)?),
        };
        Ok(DocumentReader { path, inner })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Iterator for DocumentReader {
    type Item = Result<Document>;
    fn next(&mut self) -> Option<Result<Document>> {
        match &mut self.inner {
            Inner::Failed(e) => e.take().map(Err),
            Inner::Parquet(rows) => rows.next(),
            Inner::Jsonl(r) => {
                let rec = r.next()?;
                let line = rec.line;
                Some(match rec.value {
                    Err(e) => Err(Error::from(e)),
                    Ok(v) => {
                        let path = &self.path;
                        Document::from_json(v, || format!("{}:{line}", file_name(path)))
                            .map_err(|m| Error::bad(path, line, m))
                    }
                })
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Parquet reading

struct ParquetRows {
    path: PathBuf,
    reader: Option<ParquetRecordBatchReader>,
    json_columns: Vec<String>,
    pending: VecDeque<Result<Document>>,
    row: u64,
}

impl ParquetRows {
    fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::bad(path, "footer", format!("not a readable Parquet file: {e}")))?;
        let schema = builder.schema().clone();
        if schema.field_with_name("text").is_err() {
            return Err(Error::bad(path, "schema", "no `text` column"));
        }
        let json_columns = schema
            .metadata()
            .get(JSON_COLUMNS_KEY)
            .map(|s| s.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let reader = builder
            .with_batch_size(1024)
            .build()
            .map_err(|e| Error::bad(path, "schema", format!("cannot read Parquet: {e}")))?;
        Ok(ParquetRows {
            path: path.to_path_buf(),
            reader: Some(reader),
            json_columns,
            pending: VecDeque::new(),
            row: 0,
        })
    }

    fn next(&mut self) -> Option<Result<Document>> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Some(d);
            }
            match self.reader.as_mut()?.next()? {
                Err(e) => {
                    // A corrupt page: report it once and stop (later pages can't be located reliably).
                    let err = Error::bad(
                        &self.path,
                        format!("row {}", self.row),
                        format!("Parquet read error: {e}"),
                    );
                    self.reader = None;
                    return Some(Err(err));
                }
                Ok(batch) => self.convert(&batch),
            }
        }
    }

    fn convert(&mut self, batch: &RecordBatch) {
        let schema = batch.schema();
        let fname = file_name(&self.path);
        let columns: Vec<(String, Cell)> = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| (f.name().clone(), Cell::new(c, self.json_columns.contains(f.name()))))
            .collect();
        for i in 0..batch.num_rows() {
            let row = self.row;
            self.row += 1;
            let mut map = Map::new();
            let mut extra = None;
            for (name, cell) in &columns {
                let v = cell.value(i);
                if name == EXTRA_COLUMN {
                    extra = Some(v);
                } else if !v.is_null() || name == "url" || name == "id" || name == "text" {
                    map.insert(name.clone(), v);
                }
            }
            if let Some(Value::String(s)) = extra {
                match serde_json::from_str::<Map<String, Value>>(&s) {
                    Ok(m) => map.extend(m),
                    Err(e) => {
                        self.pending.push_back(Err(Error::bad(
                            &self.path,
                            format!("row {row}"),
                            format!("bad `{EXTRA_COLUMN}` JSON: {e}"),
                        )));
                        continue;
                    }
                }
            }
            let doc = Document::from_json(Value::Object(map), || format!("{fname}:{row}"))
                .map_err(|m| Error::bad(&self.path, format!("row {row}"), m));
            self.pending.push_back(doc);
        }
    }
}

/// A column viewed as JSON values.
enum Cell<'a> {
    Str(&'a StringArray),
    Json(&'a StringArray),
    Bool(&'a BooleanArray),
    Int(&'a Int64Array),
    Float(&'a Float64Array),
    Other(ArrayRef),
}

impl<'a> Cell<'a> {
    fn new(col: &'a ArrayRef, json: bool) -> Cell<'a> {
        let any = col.as_any();
        if let Some(a) = any.downcast_ref::<StringArray>() {
            return if json { Cell::Json(a) } else { Cell::Str(a) };
        }
        if let Some(a) = any.downcast_ref::<BooleanArray>() {
            return Cell::Bool(a);
        }
        if let Some(a) = any.downcast_ref::<Int64Array>() {
            return Cell::Int(a);
        }
        if let Some(a) = any.downcast_ref::<Float64Array>() {
            return Cell::Float(a);
        }
        // Other integer/float/string widths: cast to a common type; anything else as display text.
        let target = match col.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Some(DataType::Int64),
            DataType::Float16 | DataType::Float32 => Some(DataType::Float64),
            DataType::UInt64 => Some(DataType::Float64),
            DataType::LargeUtf8 | DataType::Utf8View => Some(DataType::Utf8),
            _ => None,
        };
        if let Some(t) = target {
            if let Ok(c) = arrow_cast::cast(col.as_ref(), &t) {
                return Cell::Other(c);
            }
        }
        Cell::Other(col.clone())
    }

    fn value(&self, i: usize) -> Value {
        match self {
            Cell::Str(a) => {
                if a.is_null(i) {
                    Value::Null
                } else {
                    Value::String(a.value(i).to_string())
                }
            }
            Cell::Json(a) => {
                if a.is_null(i) {
                    Value::Null
                } else {
                    serde_json::from_str(a.value(i))
                        .unwrap_or_else(|_| Value::String(a.value(i).to_string()))
                }
            }
            Cell::Bool(a) => {
                if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Bool(a.value(i))
                }
            }
            Cell::Int(a) => {
                if a.is_null(i) {
                    Value::Null
                } else {
                    Value::from(a.value(i))
                }
            }
            Cell::Float(a) => {
                if a.is_null(i) {
                    Value::Null
                } else {
                    serde_json::Number::from_f64(a.value(i)).map_or(Value::Null, Value::Number)
                }
            }
            Cell::Other(c) => {
                if c.is_null(i) {
                    return Value::Null;
                }
                let any = c.as_any();
                if let Some(a) = any.downcast_ref::<Int64Array>() {
                    return Value::from(a.value(i));
                }
                if let Some(a) = any.downcast_ref::<Float64Array>() {
                    return serde_json::Number::from_f64(a.value(i))
                        .map_or(Value::Null, Value::Number);
                }
                if let Some(a) = any.downcast_ref::<StringArray>() {
                    return Value::String(a.value(i).to_string());
                }
                let opts = arrow_cast::display::FormatOptions::default();
                match arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &opts) {
                    Ok(f) => Value::String(f.value(i).to_string()),
                    Err(_) => Value::Null,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes documents to JSONL(.gz/.zst) or Parquet, chosen by extension. The file appears under
/// its name only after [`DocumentWriter::finish`] (temp file + rename).
pub struct DocumentWriter {
    path: PathBuf,
    inner: WriterInner,
    count: u64,
}

enum WriterInner {
    Jsonl(JsonlWriter),
    Parquet(Box<ParquetDocWriter>),
}

impl DocumentWriter {
    /// Create a writer for `path` (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`, `.parquet`).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let inner = match DocFormat::from_path(&path)? {
            DocFormat::Jsonl => WriterInner::Jsonl(JsonlWriter::create(&path)?),
            DocFormat::Parquet => WriterInner::Parquet(Box::new(ParquetDocWriter::create(&path)?)),
        };
        Ok(DocumentWriter { path, inner, count: 0 })
    }

    /// Append one document.
    pub fn write(&mut self, doc: &Document) -> Result<()> {
        match &mut self.inner {
            WriterInner::Jsonl(w) => w.write(doc)?,
            WriterInner::Parquet(w) => w.write(doc.clone())?,
        }
        self.count += 1;
        Ok(())
    }

    /// Append one document, taking ownership (avoids a copy for Parquet).
    pub fn write_owned(&mut self, doc: Document) -> Result<()> {
        match &mut self.inner {
            WriterInner::Jsonl(w) => w.write(&doc)?,
            WriterInner::Parquet(w) => w.write(doc)?,
        }
        self.count += 1;
        Ok(())
    }

    /// Documents written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush and move the file into place; returns the number of documents written.
    pub fn finish(self) -> Result<u64> {
        match self.inner {
            WriterInner::Jsonl(w) => w.finish()?,
            WriterInner::Parquet(w) => w.finish()?,
        }
        Ok(self.count)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ColType {
    Bool,
    Int,
    Float,
    Str,
    Json,
}

impl ColType {
    fn of(v: &Value) -> Option<ColType> {
        match v {
            Value::Null => None,
            Value::Bool(_) => Some(ColType::Bool),
            Value::Number(n) if n.is_i64() => Some(ColType::Int),
            Value::Number(_) => Some(ColType::Float),
            Value::String(_) => Some(ColType::Str),
            _ => Some(ColType::Json),
        }
    }
    fn merge(a: ColType, b: ColType) -> ColType {
        use ColType::*;
        match (a, b) {
            (x, y) if x == y => x,
            (Int, Float) | (Float, Int) => Float,
            _ => Json,
        }
    }
    fn accepts(self, v: &Value) -> bool {
        match (self, v) {
            (_, Value::Null) => true,
            (ColType::Bool, Value::Bool(_)) => true,
            (ColType::Int, Value::Number(n)) => n.is_i64(),
            (ColType::Float, Value::Number(_)) => true,
            (ColType::Str, Value::String(_)) => true,
            (ColType::Json, _) => true,
            _ => false,
        }
    }
    fn data_type(self) -> DataType {
        match self {
            ColType::Bool => DataType::Boolean,
            ColType::Int => DataType::Int64,
            ColType::Float => DataType::Float64,
            ColType::Str | ColType::Json => DataType::Utf8,
        }
    }
}

struct ParquetDocWriter {
    path: PathBuf,
    file: Option<AtomicFile>,
    writer: Option<ArrowWriter<AtomicFile>>,
    /// Metadata columns (name, type) once the schema is fixed.
    columns: Vec<(String, ColType)>,
    schema: Option<SchemaRef>,
    buf: Vec<Document>,
}

impl ParquetDocWriter {
    fn create(path: &Path) -> Result<Self> {
        let file = AtomicFile::create(path)?;
        Ok(ParquetDocWriter {
            path: path.to_path_buf(),
            file: Some(file),
            writer: None,
            columns: Vec::new(),
            schema: None,
            buf: Vec::new(),
        })
    }

    fn write(&mut self, doc: Document) -> Result<()> {
        self.buf.push(doc);
        if self.buf.len() >= PARQUET_ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn fix_schema(&mut self) -> Result<()> {
        // Infer column types from the buffered rows, in first-seen key order.
        let mut order: Vec<String> = Vec::new();
        let mut types: HashMap<String, Option<ColType>> = HashMap::new();
        for d in &self.buf {
            for (k, v) in &d.metadata {
                if k == EXTRA_COLUMN || k == "id" || k == "url" || k == "text" {
                    continue;
                }
                let e = types.entry(k.clone()).or_insert_with(|| {
                    order.push(k.clone());
                    None
                });
                if let Some(t) = ColType::of(v) {
                    *e = Some(match *e {
                        None => t,
                        Some(prev) => ColType::merge(prev, t),
                    });
                }
            }
        }
        self.columns = order
            .into_iter()
            .map(|k| {
                let t = types.get(&k).copied().flatten().unwrap_or(ColType::Str);
                (k, t)
            })
            .collect();
        let mut fields = vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("url", DataType::Utf8, true),
            Field::new("text", DataType::Utf8, false),
        ];
        for (k, t) in &self.columns {
            fields.push(Field::new(k, t.data_type(), true));
        }
        fields.push(Field::new(EXTRA_COLUMN, DataType::Utf8, true));
        let json_cols: Vec<&str> = self
            .columns
            .iter()
            .filter(|(_, t)| *t == ColType::Json)
            .map(|(k, _)| k.as_str())
            .collect();
        let mut md = HashMap::new();
        md.insert(JSON_COLUMNS_KEY.to_string(), json_cols.join(","));
        let schema = Arc::new(Schema::new_with_metadata(fields, md));
        let props = WriterProperties::builder()
            .set_compression(PqCompression::ZSTD(
                ZstdLevel::try_new(3).map_err(|e| Error::Msg(e.to_string()))?,
            ))
            .set_max_row_group_size(PARQUET_ROW_GROUP)
            .build();
        let file =
            self.file.take().ok_or_else(|| Error::Msg("parquet writer already started".into()))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| {
            Error::bad(&self.path, "schema", format!("cannot start Parquet writer: {e}"))
        })?;
        self.writer = Some(writer);
        self.schema = Some(schema);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.schema.is_none() {
            self.fix_schema()?;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let docs = std::mem::take(&mut self.buf);
        let n = docs.len();
        let mut ids = Vec::with_capacity(n);
        let mut urls = Vec::with_capacity(n);
        let mut texts = Vec::with_capacity(n);
        let mut cols: Vec<Vec<Value>> = vec![Vec::with_capacity(n); self.columns.len()];
        let mut extras: Vec<Option<String>> = Vec::with_capacity(n);
        for mut d in docs {
            for (ci, (k, t)) in self.columns.iter().enumerate() {
                let v = match d.metadata.get(k) {
                    Some(v) if t.accepts(v) => d.metadata.remove(k).unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                cols[ci].push(v);
            }
            // Whatever is left (new keys, or values of the wrong type) rides in the extra column.
            d.metadata.retain(|k, _| k != "id" && k != "url" && k != "text" && k != EXTRA_COLUMN);
            extras.push(if d.metadata.is_empty() {
                None
            } else {
                Some(Value::Object(std::mem::take(&mut d.metadata)).to_string())
            });
            ids.push(d.id);
            urls.push(d.url);
            texts.push(d.text);
        }
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(urls)),
            Arc::new(StringArray::from(texts)),
        ];
        for (ci, (_, t)) in self.columns.iter().enumerate() {
            let vals = &cols[ci];
            let arr: ArrayRef = match t {
                ColType::Bool => {
                    Arc::new(vals.iter().map(Value::as_bool).collect::<BooleanArray>())
                }
                ColType::Int => Arc::new(vals.iter().map(Value::as_i64).collect::<Int64Array>()),
                ColType::Float => {
                    Arc::new(vals.iter().map(Value::as_f64).collect::<Float64Array>())
                }
                ColType::Str => Arc::new(
                    vals.iter().map(|v| v.as_str().map(str::to_string)).collect::<StringArray>(),
                ),
                ColType::Json => Arc::new(
                    vals.iter()
                        .map(|v| if v.is_null() { None } else { Some(v.to_string()) })
                        .collect::<StringArray>(),
                ),
            };
            arrays.push(arr);
        }
        arrays.push(Arc::new(StringArray::from(extras)));
        let schema = self.schema.clone().ok_or_else(|| Error::Msg("schema not fixed".into()))?;
        let batch = RecordBatch::try_new(schema, arrays).map_err(|e| {
            Error::bad(&self.path, "batch", format!("cannot build Parquet batch: {e}"))
        })?;
        let w = self.writer.as_mut().ok_or_else(|| Error::Msg("parquet writer missing".into()))?;
        w.write(&batch)
            .map_err(|e| Error::bad(&self.path, "write", format!("Parquet write failed: {e}")))?;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.flush()?;
        let w = self.writer.take().ok_or_else(|| Error::Msg("parquet writer missing".into()))?;
        let file = w.into_inner().map_err(|e| {
            Error::bad(&self.path, "footer", format!("cannot finish Parquet file: {e}"))
        })?;
        file.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_name() {
        assert_eq!(DocFormat::from_path(Path::new("a.jsonl.gz")).unwrap(), DocFormat::Jsonl);
        assert_eq!(DocFormat::from_path(Path::new("a/b.parquet")).unwrap(), DocFormat::Parquet);
        assert!(DocFormat::from_path(Path::new("a.txt")).is_err());
    }
}
