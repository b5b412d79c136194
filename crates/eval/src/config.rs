//! TOML run configs for `mathforge eval --config FILE.toml` (DESIGN.md: keys equal the long
//! flags; flags override the file; the resolved config is written next to the outputs). The
//! binary's flag struct goes through `serde_json::Value`, so the TOML dependency stays here.
use crate::{Error, Result};
use std::path::Path;

/// Read a TOML file as a JSON value (tables become objects), naming the file in errors.
pub fn read_toml(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Fs { path: path.to_path_buf(), source: e })?;
    let value: toml::Value = toml::from_str(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    serde_json::to_value(value).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// Render a JSON object as TOML (`null` fields are dropped: TOML has no null).
pub fn to_toml(value: &serde_json::Value) -> Result<String> {
    let cleaned = match value {
        serde_json::Value::Object(m) => {
            serde_json::Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        other => other.clone(),
    };
    let t: toml::Value = serde_json::from_value(cleaned).map_err(|e| Error::Invalid(format!("config: {e}")))?;
    toml::to_string(&t).map_err(|e| Error::Invalid(format!("config: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn toml_round_trip_drops_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "n = 8\nprompt-format = \"tir\"\n").unwrap();
        let v = super::read_toml(&p).unwrap();
        assert_eq!(v["n"], 8);
        let s = super::to_toml(&serde_json::json!({"n": 8, "limit": null, "data": "x.jsonl"})).unwrap();
        assert!(s.contains("n = 8") && !s.contains("limit"), "{s}");
        std::fs::write(&p, "n = ").unwrap();
        assert!(super::read_toml(&p).unwrap_err().to_string().contains("c.toml"));
    }
}
