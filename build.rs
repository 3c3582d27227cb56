//! Generates include/parfor.h from the Rust sources with cbindgen (configured in
//! cbindgen.toml; the cbindgen version is pinned in Cargo.toml because point releases
//! change the output). The committed header must equal the generated one: a test
//! compares them, and the build rewrites the file only when its text changes.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
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
    let header = root.join("include").join("parfor.h");
    if std::fs::read(&header).ok().as_deref() != Some(&text[..]) {
        std::fs::create_dir_all(root.join("include")).expect("include/ is creatable");
        std::fs::write(&header, &text).expect("include/parfor.h is writable");
    }
}
