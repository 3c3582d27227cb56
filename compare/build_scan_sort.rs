//! The C and C++ peers of the scan/sort comparison (`src/bin/scan_sort.rs`), called
//! from build.rs: `scan_sort/peers.c` with gcc -fopenmp (serial scan, OpenMP 5 inscan
//! scan, qsort) and, where oneTBB is installed, `scan_sort/peers.cpp` (std::sort,
//! TBB parallel_scan and parallel_sort; cfg `parfor_scan_sort_tbb`).

use std::path::Path;

pub fn build(manifest: &Path) {
    let dir = manifest.join("scan_sort");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo::rustc-check-cfg=cfg(parfor_scan_sort_tbb)");
    let mut c = cc::Build::new();
    c.compiler("gcc")
        .std("c99")
        .file(dir.join("peers.c"))
        .flag("-fopenmp")
        .flag("-march=native")
        .flag("-Wall")
        .flag("-Wextra")
        // gcc 12 warns about its own temporaries in the code it generates for an
        // inscan reduction; the source has no uninitialised variable.
        .flag("-Wno-maybe-uninitialized")
        .opt_level(3);
    c.compile("compare_scan_sort_c");
    println!("cargo:rustc-link-lib=dylib=gomp");
    let mut cpp = cc::Build::new();
    cpp.cpp(true)
        .std("c++17")
        .file(dir.join("peers.cpp"))
        .flag("-march=native")
        .flag("-Wall")
        .opt_level(3)
        .cargo_warnings(false);
    match cpp.try_compile("compare_scan_sort_cpp") {
        Ok(()) => {
            println!("cargo:rustc-link-lib=dylib=tbb");
            println!("cargo:rustc-cfg=parfor_scan_sort_tbb");
        }
        Err(_) => println!(
            "cargo:warning=scan/sort TBB and std::sort columns skipped: install libtbb-dev"
        ),
    }
}
