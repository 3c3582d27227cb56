//! The ABI check CI runs (abi/check.sh: libabigail's abidiff against the committed
//! description of the last release, abi/parfor-0.1.0.abi), on the library `make`
//! links for installation: it passes for this library, and it fails for a scratch
//! build of the same library that drops one function from the exports, so that an
//! accidental break does fail CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{lib_dir, require, root, scratch};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn baseline() -> PathBuf {
    root().join("abi").join("parfor-0.1.0.abi")
}

/// Links the installable library from this run's libparfor.a with `make`, using
/// `version_script`, into a fresh `name` directory; returns the library's path.
fn link_library(name: &str, version_script: &Path) -> PathBuf {
    require("make", "make");
    let dist = scratch("abi").join(name);
    let _ = std::fs::remove_dir_all(&dist);
    let out = Command::new("make")
        .arg("-C")
        .arg(root())
        .arg("all")
        .arg("NO_BUILD=1")
        .arg(format!("BUILD_DIR={}", lib_dir().display()))
        .arg(format!("DIST={}", dist.display()))
        .arg(format!("VERSION_SCRIPT={}", version_script.display()))
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dist.join(format!("libparfor.so.{VERSION}"))
}

fn check(new: &Path) -> Output {
    require("abidiff", "abigail-tools");
    Command::new("sh")
        .arg(root().join("abi").join("check.sh"))
        .arg(baseline())
        .arg(new)
        .arg(root().join("include"))
        .output()
        .expect("run abi/check.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn this_library_is_compatible_with_the_last_release() {
    let lib = link_library("current", &root().join("abi").join("parfor.map"));
    let out = check(&lib);
    assert!(out.status.success(), "abi/check.sh failed:\n{}", text(&out));
    assert!(text(&out).contains("is ABI compatible"), "{}", text(&out));
}

#[test]
fn a_removed_function_fails_the_check() {
    // The project's version script, but with parfor_dot made local: the same
    // objects, one export fewer, as if the function had been removed or renamed.
    let map = std::fs::read_to_string(root().join("abi").join("parfor.map")).unwrap();
    let broken = map.replace("  local:\n    *;", "  local:\n    parfor_dot;\n    *;");
    assert_ne!(
        broken, map,
        "abi/parfor.map changed shape: update this test"
    );
    let script = scratch("abi").join("broken.map");
    std::fs::write(&script, broken).unwrap();
    let lib = link_library("broken", &script);
    let syms = Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(&lib)
        .output()
        .unwrap();
    let syms = String::from_utf8_lossy(&syms.stdout);
    assert!(!syms.contains(" parfor_dot@"), "parfor_dot still exported");
    assert!(
        syms.contains(" parfor_dot_exact@@PARFOR_0"),
        "the others must stay"
    );

    let out = check(&lib);
    assert_eq!(
        out.status.code(),
        Some(1),
        "abi/check.sh passed a break:\n{}",
        text(&out)
    );
    let report = text(&out);
    assert!(report.contains("INCOMPATIBLE"), "{report}");
    assert!(report.contains("parfor_dot"), "{report}");
}

/// A copy of the baseline edited by `edit` (which must change it), as an older
/// release's ABI description: checking the real baseline against it shows what the
/// check makes of the difference, without building anything.
fn edited_baseline(name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(baseline()).unwrap();
    let edited = edit(&text);
    assert_ne!(
        edited, text,
        "{name}: the edit did not apply (baseline changed shape?)"
    );
    let path = scratch("abi").join(format!("{name}.abi"));
    std::fs::write(&path, edited).unwrap();
    path
}

fn check_pair(old: &Path, new: &Path) -> Output {
    require("abidiff", "abigail-tools");
    Command::new("sh")
        .arg(root().join("abi").join("check.sh"))
        .arg(old)
        .arg(new)
        .output()
        .expect("run abi/check.sh")
}

#[test]
fn a_changed_parameter_type_fails_the_check() {
    // An "old" parfor_reduce whose `len` was an int (the dtype's type): the current
    // size_t is a changed signature, which the policy forbids.
    let old = edited_baseline("int_len", |s| {
        let param = "name='len' filepath='src/ffi/mod.rs' line='144'";
        let at = s.find(param).expect("parfor_reduce's len parameter");
        let start = s[..at].rfind("<parameter type-id='").unwrap();
        let dtype = s
            .find("name='dtype' filepath='src/ffi/mod.rs' line='145'")
            .unwrap();
        let dtype_start = s[..dtype].rfind("<parameter type-id='").unwrap();
        let dtype_type = &s[dtype_start..dtype];
        format!("{}{}{}", &s[..start], dtype_type, &s[at..])
    });
    let out = check_pair(&old, &baseline());
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("ABI CHANGE") && report.contains("parfor_reduce"),
        "{report}"
    );
}

#[test]
fn an_appended_options_field_passes_the_check() {
    // An "old" parfor_options without its last field: the current struct appends
    // one, which the policy allows (callers set `size`).
    let old = edited_baseline("short_options", |s| {
        let start = s
            .find("<class-decl name='parfor_options' size-in-bits='256'")
            .expect("parfor_options in the baseline");
        let end = start + s[start..].find("</class-decl>").unwrap();
        let block = &s[start..end];
        let last = block.rfind("<data-member").unwrap();
        let shortened =
            block[..last]
                .trim_end()
                .replacen("size-in-bits='256'", "size-in-bits='192'", 1);
        format!("{}{}\n          {}", &s[..start], shortened, &s[end..])
    });
    let out = check_pair(&old, &baseline());
    assert!(out.status.success(), "{}", text(&out));
}
