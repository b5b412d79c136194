//! TOML run configs whose keys equal the long CLI flags (DESIGN.md "Command line"): a file gives
//! the base, flags override it, unknown keys are an error naming the key and the file, and the
//! resolved config is written to `<run>/config.toml` so a run documents itself.
//!
//! The trainer configs are plain serde structs with kebab-case keys. Known keys are taken from the
//! struct itself (serialized with its defaults through `serde_json`, which keeps `None` fields),
//! so flattened sub-configs need no hand-kept key list and cannot drift from the flags.
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// The keys a config type accepts.
pub fn known_keys<T: Serialize + Default>() -> BTreeSet<String> {
    match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// Resolve a config: read `file` (if any), reject keys `T` does not know, apply `overrides` (the
/// flags that were given on the command line, as a JSON object keyed by long flag name; the CLI
/// serializes its clap struct, skipping flags not given), and deserialize on top of
/// `T::default()`, so a key absent from both takes the trainer's own default. Errors name the file
/// and the key.
pub fn resolve<T: Serialize + DeserializeOwned + Default>(
    file: Option<&Path>,
    overrides: serde_json::Value,
) -> Result<T> {
    let overrides: toml::Table = match overrides {
        serde_json::Value::Null => toml::Table::new(),
        v => toml::Table::try_from(v).map_err(|e| Error::Config {
            file: "<flags>".into(),
            msg: format!("flags are not a table: {e}"),
        })?,
    };
    let known = known_keys::<T>();
    let file_name = file.map(|p| p.display().to_string()).unwrap_or_else(|| "<flags>".into());
    let table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            text.parse::<toml::Table>()
                .map_err(|e| Error::Config { file: file_name.clone(), msg: e.to_string() })?
        }
        None => toml::Table::new(),
    };
    for (src, t) in [(&file_name, &table), (&"<flags>".to_string(), &overrides)] {
        if let Some(key) = t.keys().find(|k| !known.contains(*k)) {
            let hint =
                closest(key, &known).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
            return Err(Error::Config {
                file: src.clone(),
                msg: format!("unknown key `{key}`{hint}"),
            });
        }
    }
    // The base is `T::default()` itself, not serde's per-field defaults: with `#[serde(flatten)]`
    // serde fills a missing common key from `CommonConfig::default()` (lr 1e-3, cosine, 10 warmup
    // steps) instead of the trainer's own (GRPO: lr 1e-5, constant, no warmup). Seeding the table
    // with the trainer's defaults makes an absent key mean "this trainer's default" everywhere.
    let mut base: toml::Table = to_toml(&T::default())?
        .parse()
        .map_err(|e: toml::de::Error| Error::Msg(format!("default config: {e}")))?;
    base.extend(table);
    base.extend(overrides);
    T::deserialize(toml::Value::Table(base))
        .map_err(|e| Error::Config { file: file_name, msg: e.to_string().trim().to_string() })
}

/// Write the resolved config as TOML to `path` atomically.
pub fn write_resolved<T: Serialize>(config: &T, path: &Path) -> Result<()> {
    write_raw(&to_toml(config)?, path)
}

/// Write already-rendered TOML text to `path` atomically.
pub fn write_raw(text: &str, path: &Path) -> Result<()> {
    mathforge_io::atomic::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Render a config as TOML text.
pub fn to_toml<T: Serialize>(config: &T) -> Result<String> {
    toml::to_string(config).map_err(|e| Error::Msg(format!("serializing config: {e}")))
}

/// The config as JSON (for checkpoint `meta.json`).
pub fn to_json<T: Serialize>(config: &T) -> serde_json::Value {
    serde_json::to_value(config).unwrap_or(serde_json::Value::Null)
}

/// A known key within edit distance 2 of `key`, for "did you mean".
fn closest<'a>(key: &str, known: &'a BTreeSet<String>) -> Option<&'a String> {
    known.iter().map(|k| (edit_distance(key, k), k)).filter(|(d, _)| *d <= 2).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case", default)]
    struct Inner {
        lr: f64,
        warmup_steps: u64,
    }
    impl Default for Inner {
        fn default() -> Self {
            Inner { lr: 1e-3, warmup_steps: 10 }
        }
    }
    #[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
    #[serde(rename_all = "kebab-case", default)]
    struct Cfg {
        #[serde(flatten)]
        common: Inner,
        data: Vec<String>,
        init: Option<String>,
    }

    #[test]
    fn file_then_flags_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "lr = 0.5\ndata = [\"a\"]\nwarmup-steps = 3\n").unwrap();
        let c: Cfg = resolve(Some(&f), serde_json::json!({"lr": 0.25})).unwrap();
        assert_eq!(
            c,
            Cfg { common: Inner { lr: 0.25, warmup_steps: 3 }, data: vec!["a".into()], init: None }
        );
        assert!(known_keys::<Cfg>().contains("init"), "None fields are still known keys");

        std::fs::write(&f, "lr = 0.5\nwarmup_steps = 3\n").unwrap();
        let err = resolve::<Cfg>(Some(&f), serde_json::Value::Null).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("unknown key `warmup_steps`"), "{err}");
        assert!(err.contains("did you mean `warmup-steps`"), "{err}");

        std::fs::write(&f, "lr = \"fast\"\n").unwrap();
        let err = resolve::<Cfg>(Some(&f), serde_json::Value::Null).unwrap_err().to_string();
        assert!(err.contains("c.toml"), "{err}");

        let err = resolve::<Cfg>(Some(&dir.path().join("nope.toml")), serde_json::Value::Null)
            .unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");

        let out = dir.path().join("run/config.toml");
        write_resolved(&c, &out).unwrap();
        let back: Cfg = resolve(Some(&out), serde_json::Value::Null).unwrap();
        assert_eq!(back, c);
    }

    /// Every trainer keeps its own defaults for the common keys a file and the flags leave out
    /// (before the fix, `flatten` filled them from `CommonConfig::default()`).
    #[test]
    fn absent_keys_take_each_trainers_defaults() {
        use crate::trainer::CommonConfig;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(&f, "steps = 7\n").unwrap();
        macro_rules! check {
            ($t:ty) => {{
                let got: $t = resolve(Some(&f), serde_json::json!({"seed": 3})).unwrap();
                let mut want = <$t>::default();
                want.common.steps = 7;
                want.common.seed = 3;
                assert_eq!(got, want, "{}", stringify!($t));
                // Serde's per-field fill would have produced this; all but SFT differ from it.
                let generic = CommonConfig { steps: 7, seed: 3, ..CommonConfig::default() };
                (got.common != generic)
            }};
        }
        let differs = [
            check!(crate::pretrain::PretrainConfig),
            check!(crate::sft::SftConfig),
            check!(crate::grpo::GrpoConfig),
            check!(crate::rft::RftConfig),
            check!(crate::dpo::DpoConfig),
            check!(crate::ppo::PpoConfig),
            check!(crate::rm::RmConfig),
        ];
        assert_eq!(differs, [true, false, true, true, true, true, true]);
        // A key given in the file still beats the trainer default, and a flag beats the file.
        std::fs::write(&f, "lr = 0.5\nschedule = \"cosine\"\n").unwrap();
        let g: crate::grpo::GrpoConfig =
            resolve(Some(&f), serde_json::json!({"lr": 0.25})).unwrap();
        assert_eq!((g.common.lr, g.common.warmup_steps), (0.25, 0));
        assert_eq!(g.common.schedule, crate::schedule::ScheduleKind::Cosine);
    }
}
