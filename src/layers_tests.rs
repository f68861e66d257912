//! The layers of `lib.rs`, checked on the source: every `crate::<module>` a file names must be
//! its own layer or a lower one. A new import cycle between the top-level modules, or a lower
//! layer reaching up, fails here with the file and the line.

use std::fs;
use std::path::{Path, PathBuf};

/// Lowest first; modules on one line are one layer (they may name each other).
const LAYERS: &[&[&str]] = &[
    &["locks", "log"],
    &["media"],
    &["archive"],
    &["mixer"],
    &["conference"],
    &["api"],
    &["ffi"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `line` names through `crate::` (or `$crate::` in macros).
fn named_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    found
}

#[test]
fn every_module_names_only_its_own_layer_or_lower_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = layer_of(&top) else {
            continue; // lib.rs and this file
        };
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for module in named_modules(line) {
                if let Some(theirs) = layer_of(&module) {
                    if theirs > own {
                        violations.push(format!(
                            "{}:{}: `{top}` names `{module}`, a higher layer",
                            relative.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(layer_of(name).is_some(), "{name} is in no layer");
        }
    }
}

#[test]
fn unsafe_code_lives_at_the_boundary() {
    // libopus's encoder is the one exception, wrapped in one small safe type.
    const ALLOWED: &[&str] = &["ffi/", "media/encoder.rs"];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if ALLOWED.iter().any(|a| relative.starts_with(a)) || relative == "layers_tests.rs" {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("unsafe ") || code.contains("unsafe{") {
                found.push(format!("{relative}:{}", n + 1));
            }
        }
    }
    assert!(found.is_empty(), "unsafe outside src/ffi: {found:?}");
}
