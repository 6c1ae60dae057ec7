//! Training recipes (TOML) and `extends = "BASE.toml"`: a recipe can name another recipe in the
//! same folder and give only the keys it changes. Tables (`[model]`, …) merge key by key; any
//! other value replaces the base's. Same folder, so that the relative paths in both mean the
//! same files.

use std::path::Path;

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

/// How many recipes one may stack (a loop is refused long before this).
const MAX_DEPTH: usize = 8;

/// Reads a recipe, with what it extends merged in, into `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let table = read_table(path, 0)?;
    table.try_into().with_context(|| format!("parsing {}", path.display()))
}

fn read_table(path: &Path, depth: usize) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(base) = table.remove("extends") else {
        return Ok(table);
    };
    let Some(base) = base.as_str() else {
        bail!("{}: extends must be a file name", path.display());
    };
    if Path::new(base).components().count() != 1 {
        bail!(
            "{}: extends = {base:?} must name a recipe in the same folder (its relative paths would mean other files)",
            path.display()
        );
    }
    if depth >= MAX_DEPTH {
        bail!("{}: extends goes more than {MAX_DEPTH} recipes deep (a loop?)", path.display());
    }
    let mut merged = read_table(&path.with_file_name(base), depth + 1)
        .with_context(|| format!("{} extends {base}", path.display()))?;
    merge(&mut merged, table);
    Ok(merged)
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Recipe {
        output: String,
        steps: usize,
        #[serde(default)]
        lr: f64,
        model: Model,
    }
    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Model {
        dim: usize,
        blocks: usize,
    }

    #[test]
    fn a_recipe_changes_only_what_it_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.toml"),
            "output = \"a\"\nsteps = 10\nlr = 0.1\n[model]\ndim = 4\nblocks = 2\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("more.toml"),
            "extends = \"base.toml\"\noutput = \"b\"\n[model]\nblocks = 6\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("most.toml"), "extends = \"more.toml\"\nsteps = 30\n").unwrap();
        let most: Recipe = read(&dir.path().join("most.toml")).unwrap();
        assert_eq!(
            most,
            Recipe { output: "b".into(), steps: 30, lr: 0.1, model: Model { dim: 4, blocks: 6 } }
        );
        let base: Recipe = read(&dir.path().join("base.toml")).unwrap();
        assert_eq!(base.model.blocks, 2);
    }

    #[test]
    fn loops_other_folders_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "extends = \"b.toml\"\n").unwrap();
        std::fs::write(dir.path().join("b.toml"), "extends = \"a.toml\"\n").unwrap();
        let err = format!("{:#}", read::<Recipe>(&dir.path().join("a.toml")).unwrap_err());
        assert!(err.contains("more than 8 recipes deep"), "{err}");
        std::fs::write(dir.path().join("c.toml"), "extends = \"../c.toml\"\n").unwrap();
        let err = format!("{:#}", read::<Recipe>(&dir.path().join("c.toml")).unwrap_err());
        assert!(err.contains("same folder"), "{err}");
        std::fs::write(
            dir.path().join("base.toml"),
            "output = \"a\"\nsteps = 1\n[model]\ndim = 4\nblocks = 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("typo.toml"), "extends = \"base.toml\"\nstep = 3\n").unwrap();
        let err = format!("{:#}", read::<Recipe>(&dir.path().join("typo.toml")).unwrap_err());
        assert!(err.contains("step"), "{err}");
        let err = format!("{:#}", read::<Recipe>(&dir.path().join("missing.toml")).unwrap_err());
        assert!(err.contains("missing.toml"), "{err}");
    }
}
