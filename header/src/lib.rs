//! Generation of parfor's C header, `include/parfor.h`, from the Rust sources of the
//! crate at a given root, with cbindgen (configured by `cbindgen.toml` there; the
//! cbindgen version is pinned in this crate's Cargo.toml because point releases change
//! the output).
//!
//! This is a step of its own (`cargo run -p parfor-header`), not a side effect of
//! building the library: a program that depends on parfor compiles no cbindgen. The
//! committed header must equal what [`generate`] returns; tests/header.rs checks it.
//!
//! Besides cbindgen's declarations the header carries the version macros
//! `PARFOR_VERSION_MAJOR`, `PARFOR_VERSION_MINOR`, `PARFOR_VERSION_PATCH` and
//! `PARFOR_VERSION_STRING`, taken from the `version` of the crate's Cargo.toml, the one
//! place the version is written (`parfor_version()` returns the same string, from
//! `CARGO_PKG_VERSION`).

#![deny(missing_docs)]

use std::path::Path;

/// The crate version as written in `<root>/Cargo.toml`, split into its numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The whole version string, for example "0.2.0".
    pub text: String,
    /// MAJOR.
    pub major: u64,
    /// MINOR.
    pub minor: u64,
    /// PATCH.
    pub patch: u64,
}

/// Reads `[package] version` from `<root>/Cargo.toml`. A pre-release or build suffix
/// ("1.0.0-rc.1") is refused: the macros would not describe it.
pub fn crate_version(root: &Path) -> Result<Version, String> {
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    let version = manifest
        .get("package")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("{} has no [package] version string", path.display()))?;
    parse_version(version)
}

/// Splits "MAJOR.MINOR.PATCH" into its numbers.
pub fn parse_version(version: &str) -> Result<Version, String> {
    let parts: Vec<&str> = version.split('.').collect();
    let number = |s: &str| {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match parts[..] {
        [a, b, c] => match (number(a), number(b), number(c)) {
            (Some(major), Some(minor), Some(patch)) => Ok(Version {
                text: version.to_string(),
                major,
                minor,
                patch,
            }),
            _ => Err(format!("version {version:?} is not MAJOR.MINOR.PATCH")),
        },
        _ => Err(format!("version {version:?} is not MAJOR.MINOR.PATCH")),
    }
}

/// The `#define` lines of the version macros, as they appear in the header.
pub fn version_macros(v: &Version) -> String {
    format!(
        "/* The version of the header (from Cargo.toml); parfor_version() returns the\n   \
         library's, which is PARFOR_VERSION_STRING when header and library match. */\n\
         #define PARFOR_VERSION_MAJOR {}\n\
         #define PARFOR_VERSION_MINOR {}\n\
         #define PARFOR_VERSION_PATCH {}\n\
         #define PARFOR_VERSION_STRING \"{}\"",
        v.major, v.minor, v.patch, v.text
    )
}

/// The text of the C header for the crate at `root`.
pub fn generate(root: &Path) -> Result<String, String> {
    let version = crate_version(root)?;
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .map_err(|e| format!("cbindgen.toml: {e}"))?;
    config.after_includes = Some(version_macros(&version));
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .map_err(|e| format!("cbindgen could not generate the header: {e}"))?;
    let mut text = Vec::new();
    bindings.write(&mut text);
    String::from_utf8(text).map_err(|e| format!("generated header is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_bad_ones_are_refused() {
        let v = parse_version("0.2.0").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (0, 2, 0));
        let v = parse_version("12.345.6789").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (12, 345, 6789));
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1.2.x",
            "1.2.3-rc.1",
            "1..3",
            "+1.2.3",
        ] {
            assert!(parse_version(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn macros_spell_the_version() {
        let text = version_macros(&parse_version("3.14.15").unwrap());
        assert!(text.contains("#define PARFOR_VERSION_MAJOR 3\n"));
        assert!(text.contains("#define PARFOR_VERSION_MINOR 14\n"));
        assert!(text.contains("#define PARFOR_VERSION_PATCH 15\n"));
        assert!(text.ends_with("#define PARFOR_VERSION_STRING \"3.14.15\""));
    }
}
