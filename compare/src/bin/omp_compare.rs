//! Runs c_examples/omp_compare.c, compiled by build.rs with its `main` renamed
//! `parfor_example_omp_compare_main` and linked against parfor in this binary:
//! `cargo run -p parfor-compare --bin omp_compare`.

// The C code calls parfor's C ABI; naming the crate makes sure it is linked.
use parfor as _;

extern "C" {
    /// The example's `int main(void)`.
    fn parfor_example_omp_compare_main() -> std::ffi::c_int;
}

fn main() -> std::process::ExitCode {
    // SAFETY: the C main takes no argument; it only uses parfor and stdio.
    let status = unsafe { parfor_example_omp_compare_main() };
    std::process::ExitCode::from(u8::try_from(status).unwrap_or(1))
}
