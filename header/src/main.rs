//! `cargo run -p parfor-header`: regenerates include/parfor.h from the Rust sources.
//! `cargo run -p parfor-header -- --check`: exits 1, naming the first differing line,
//! when the committed header is not what the sources generate (CI runs this, and
//! tests/header.rs checks the same).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!(
                "usage: cargo run -p parfor-header [-- --check] (unknown argument {other:?})"
            );
            return ExitCode::from(2);
        }
    };
    // header/ sits in the repository root, beside the library's Cargo.toml.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("header/ has a parent")
        .to_path_buf();
    let generated = match parfor_header::generate(&root) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("parfor-header: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = root.join("include").join("parfor.h");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        println!("{} is up to date", path.display());
        return ExitCode::SUCCESS;
    }
    if check {
        let line = generated
            .lines()
            .zip(committed.lines())
            .position(|(g, c)| g != c)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        eprintln!(
            "{} differs from what the sources generate (first at line {}); run \
             `cargo run -p parfor-header` and commit it",
            path.display(),
            line + 1
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::create_dir_all(root.join("include"))
        .and_then(|()| std::fs::write(&path, &generated))
    {
        eprintln!("parfor-header: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", path.display());
    ExitCode::SUCCESS
}
