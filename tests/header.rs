//! The committed include/parfor.h: it is exactly what the pinned cbindgen generates
//! from src/ with cbindgen.toml (header/, `cargo run -p parfor-header`), its version
//! macros are Cargo.toml's and parfor_version()'s, it compiles cleanly as C99, C11 and C++11, and
//! Python's cffi can read it (after the preprocessor lines are stripped) and call the
//! library through it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{compile_c, lib_dir, require, root, run_stdout, scratch, Link};

fn committed_header() -> PathBuf {
    root().join("include").join("parfor.h")
}

#[test]
fn committed_header_is_generated_one() {
    let generated = parfor_header::generate(&root()).expect("cbindgen generates the header");
    let committed = std::fs::read_to_string(committed_header()).expect("read include/parfor.h");
    if generated != committed {
        // Point at the first difference: the whole header is too long to be useful.
        let line = generated
            .lines()
            .zip(committed.lines())
            .position(|(g, c)| g != c)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "include/parfor.h differs from what cbindgen generates from src/ (first at line \
             {}:\n  committed: {:?}\n  generated: {:?}).\nRun `cargo run -p parfor-header` \
             to regenerate it, then commit include/parfor.h.",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// The version macros of the header are Cargo.toml's version, and a C program built
/// with the header and linked with the library sees parfor_version() return
/// PARFOR_VERSION_STRING.
#[test]
fn version_macros_agree_with_cargo_and_parfor_version() {
    let header = std::fs::read_to_string(committed_header()).expect("read include/parfor.h");
    for (name, value) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define PARFOR_VERSION_{name} {value}\n");
        assert!(header.contains(&line), "include/parfor.h lacks {line:?}");
    }
    let line = format!(
        "#define PARFOR_VERSION_STRING \"{}\"\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(header.contains(&line), "include/parfor.h lacks {line:?}");

    let dir = scratch("header");
    let source = dir.join("version.c");
    std::fs::write(
        &source,
        r#"#include <stdio.h>
#include <string.h>
#include "parfor.h"
int main(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", PARFOR_VERSION_MAJOR,
             PARFOR_VERSION_MINOR, PARFOR_VERSION_PATCH);
    printf("%s %s %s\n", PARFOR_VERSION_STRING, expected, parfor_version());
    return strcmp(PARFOR_VERSION_STRING, parfor_version()) != 0 ||
           strcmp(expected, parfor_version()) != 0;
}
"#,
    )
    .expect("write version.c");
    for link in [Link::Shared, Link::Static] {
        let exe = dir.join(format!("version_{link:?}"));
        compile_c(
            "cc",
            std::slice::from_ref(&source),
            &exe,
            common::STRICT_C99,
            link,
        );
        let out = run_stdout(&exe, &[], &[]);
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(out.trim(), format!("{v} {v} {v}"), "{link:?}");
    }
}

/// A translation unit that includes the header twice (the include guard must hold)
/// and uses every type and function, so that each prototype is checked.
const USES_EVERY_DECLARATION: &str = r#"#include "parfor.h"
#include "parfor.h"

static int body(void *ctx, size_t begin, size_t end) { (void)ctx; return begin > end; }
static int fold(void *ctx, size_t begin, size_t end, void *acc) {
    (void)ctx; (void)acc; return begin > end;
}
static void combine(void *ctx, void *acc, const void *other) { (void)ctx; (void)acc; (void)other; }

int parfor_header_check(void);
int parfor_header_check(void) {
    parfor_options opts;
    parfor_body b = body;
    parfor_fold f = fold;
    parfor_combine c = combine;
    parfor_dtype d = PARFOR_F64;
    parfor_op op = PARFOR_LOGICAL_OR;
    parfor_schedule s = PARFOR_SCHEDULE_GUIDED;
    parfor_status st = PARFOR_ERR_RUNTIME;
    double x[2] = {1.0, 2.0}, out = 0.0;
    size_t index = 0;
    int acc = 0;
    parfor_options_init(&opts);
    opts.schedule = s;
    opts.num_threads = PARFOR_MAX_THREADS;
    st = parfor_for(0, 2, &opts, b, 0);
    st = parfor_reduce(x, 2, d, op, &opts, &out);
    st = parfor_dot(x, x, 2, d, 0, &out);
    st = parfor_argmin(x, 2, d, 0, &index);
    st = parfor_argmax(x, 2, d, 0, &index);
    st = parfor_reduce_with(0, 2, &acc, sizeof acc, 0, f, c, 0, &acc);
    st = parfor_set_num_threads(parfor_num_threads());
    return (int)st + (int)parfor_thread_index() + parfor_status_message(st)[0] +
           parfor_last_error()[0] + parfor_version()[0];
}
"#;

/// Compiles USES_EVERY_DECLARATION with `compiler` and `flags` (object only: the
/// point is the header, not linking).
fn compile_header_check(compiler: &str, apt_package: &str, extension: &str, flags: &[&str]) {
    require(compiler, apt_package);
    let dir = scratch("header");
    let tag: String = flags
        .iter()
        .map(|f| f.trim_start_matches('-').replace(['=', '+'], "_"))
        .collect::<Vec<_>>()
        .join("_");
    let source = dir.join(format!("uses_{compiler}_{tag}.{extension}"));
    std::fs::write(&source, USES_EVERY_DECLARATION).expect("write test source");
    let output = Command::new(compiler)
        .args(flags)
        .arg(format!("-I{}", root().join("include").display()))
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(source.with_extension("o"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "include/parfor.h does not compile with {compiler} {}:\n{}",
        flags.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

const STRICT: [&str; 4] = ["-Wall", "-Wextra", "-Werror", "-pedantic"];

#[test]
fn header_compiles_as_c99() {
    compile_header_check("cc", "gcc", "c", &[&["-std=c99"], &STRICT[..]].concat());
}

#[test]
fn header_compiles_as_c11() {
    compile_header_check("cc", "gcc", "c", &[&["-std=c11"], &STRICT[..]].concat());
}

#[test]
fn header_compiles_as_cpp11() {
    compile_header_check(
        "g++",
        "g++",
        "cpp",
        &[&["-x", "c++", "-std=c++11"], &STRICT[..]].concat(),
    );
}

#[test]
fn header_compiles_with_clang_when_present() {
    // gcc is the compiler the issue requires; clang, when installed, catches a
    // different set of pedantic problems.
    if common::have("clang") {
        compile_header_check(
            "clang",
            "clang",
            "c",
            &[&["-std=c99"], &STRICT[..]].concat(),
        );
    }
}

/// The header with its preprocessor lines removed, as cffi's `cdef` expects: the
/// `__cplusplus` blocks are dropped with their contents (a C preprocessor would
/// drop them), integer `#define`s are kept (cdef understands them), every other
/// directive line goes.
fn header_for_cdef(header: &str) -> String {
    let mut out = String::new();
    let mut in_cplusplus = false;
    for line in header.lines() {
        let directive = line.trim_start();
        if in_cplusplus {
            if directive.starts_with("#endif") {
                in_cplusplus = false;
            }
            continue;
        }
        if directive.starts_with("#ifdef __cplusplus") {
            in_cplusplus = true;
            continue;
        }
        if directive.starts_with('#') {
            let words: Vec<&str> = directive.split_whitespace().collect();
            let integer_define = words.len() == 3
                && words[0] == "#define"
                && words[2].chars().all(|c| c.is_ascii_digit());
            if !integer_define {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Reads the stripped header with cffi, opens the built libparfor.so through it and
/// makes a few calls: the declarations must match the real ABI, not just parse.
const CFFI_SCRIPT: &str = r#"
import sys
import cffi

header_path, lib_path, version = sys.argv[1], sys.argv[2], sys.argv[3]
ffi = cffi.FFI()
with open(header_path) as f:
    ffi.cdef(f.read())
lib = ffi.dlopen(lib_path)

assert ffi.sizeof("parfor_options") == 4 * ffi.sizeof("size_t"), ffi.sizeof("parfor_options")
assert lib.PARFOR_MAX_THREADS == 1024
assert lib.PARFOR_F64 == 1 and lib.PARFOR_U64 == 9
assert lib.PARFOR_LOGICAL_OR == 8 and lib.PARFOR_SCHEDULE_GUIDED == 3
assert lib.PARFOR_ERR_RUNTIME == 7
assert ffi.string(lib.parfor_version()).decode() == version

opts = ffi.new("parfor_options *")
lib.parfor_options_init(opts)
assert opts.size == ffi.sizeof("parfor_options")
opts.num_threads = 2
data = ffi.new("double[]", [float(i) for i in range(1000)])
out = ffi.new("double *")
assert lib.parfor_reduce(data, 1000, lib.PARFOR_F64, lib.PARFOR_SUM, opts, out) == lib.PARFOR_OK
assert out[0] == 499500.0, out[0]
index = ffi.new("size_t *")
assert lib.parfor_argmax(data, 1000, lib.PARFOR_F64, ffi.NULL, index) == lib.PARFOR_OK
assert index[0] == 999

st = lib.parfor_reduce(ffi.NULL, 1000, lib.PARFOR_F64, lib.PARFOR_SUM, ffi.NULL, out)
assert st == lib.PARFOR_ERR_NULL_ARGUMENT, st
assert b"data" in ffi.string(lib.parfor_last_error())
assert ffi.string(lib.parfor_status_message(st)) != b""
print("cffi ok")
"#;

#[test]
fn cffi_reads_header_and_calls_library() {
    require("python3", "python3");
    let check = Command::new("python3")
        .args(["-c", "import cffi"])
        .output()
        .expect("run python3");
    assert!(
        check.status.success(),
        "python3 cannot import cffi: install it (Debian/Ubuntu: apt-get install \
         python3-cffi, or pip install cffi)\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let dir = scratch("header");
    let header = std::fs::read_to_string(committed_header()).expect("read include/parfor.h");
    let stripped = dir.join("parfor_cdef.h");
    std::fs::write(&stripped, header_for_cdef(&header)).expect("write stripped header");
    let lib = lib_dir().join("libparfor.so");
    let output = Command::new("python3")
        .arg("-c")
        .arg(CFFI_SCRIPT)
        .arg(&stripped)
        .arg(&lib)
        .arg(env!("CARGO_PKG_VERSION"))
        .output()
        .expect("run python3");
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("cffi ok"),
        "cffi could not use {} with {}:\nstdout:\n{}\nstderr:\n{}",
        stripped.display(),
        lib.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn stripping_keeps_declarations_and_drops_directives() {
    // The stripper above must not hide a broken header by dropping declarations.
    let header = std::fs::read_to_string(committed_header()).expect("read include/parfor.h");
    let stripped = header_for_cdef(&header);
    assert!(!stripped.contains("#include"));
    assert!(!stripped.contains("#ifndef"));
    assert!(!stripped.contains("extern \"C\""));
    assert!(stripped.contains("#define PARFOR_MAX_THREADS 1024"));
    for function in [
        "parfor_status_message",
        "parfor_last_error",
        "parfor_version",
        "parfor_options_init",
        "parfor_for",
        "parfor_reduce",
        "parfor_dot",
        "parfor_argmin",
        "parfor_argmax",
        "parfor_reduce_with",
        "parfor_num_threads",
        "parfor_set_num_threads",
        "parfor_thread_index",
    ] {
        // Declarations start in column 0; the comments around them are indented.
        let declared = stripped
            .lines()
            .any(|l| !l.starts_with([' ', '/']) && l.contains(&format!("{function}(")));
        assert!(declared, "{function} missing after stripping");
    }
}
