//! Generates the C header from the Rust sources with cbindgen (configured in
//! cbindgen.toml; the cbindgen version is pinned in Cargo.toml because point releases
//! change the output) into `$OUT_DIR/parfor.h`.
//!
//! The committed `include/parfor.h` must equal the generated one, and a test
//! (tests/header.rs) compares them. So that the test means something on a clean
//! clone, the build does not silently overwrite the committed file: it writes it
//! only when it is missing or when `PARFOR_UPDATE_HEADER=1` is set, which is how a
//! developer refreshes it after changing the API.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let bindings = match cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            // A parse error here means src/ does not compile either; let rustc report it.
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            return;
        }
    };
    let mut text = Vec::new();
    bindings.write(&mut text);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("parfor.h"), &text).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-env-changed=PARFOR_UPDATE_HEADER");
    let header = root.join("include").join("parfor.h");
    let update = std::env::var_os("PARFOR_UPDATE_HEADER").is_some_and(|v| v == "1");
    if (update || !header.exists()) && std::fs::read(&header).ok().as_deref() != Some(&text[..]) {
        std::fs::create_dir_all(root.join("include")).expect("include/ is creatable");
        std::fs::write(&header, &text).expect("include/parfor.h is writable");
    }
}
