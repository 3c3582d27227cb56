//! Runs c_examples/reduce.c, compiled by build.rs with its `main` renamed
//! `parfor_example_reduce_main` and linked against parfor in this binary:
//! `cargo run -p parfor-compare --bin reduce [-- n]`.

use std::ffi::{c_char, c_int, CString};

// The C code calls parfor's C ABI; naming the crate makes sure it is linked.
use parfor as _;

extern "C" {
    /// The example's `int main(int argc, char **argv)`.
    fn parfor_example_reduce_main(argc: c_int, argv: *mut *mut c_char) -> c_int;
}

fn main() -> std::process::ExitCode {
    // C's argv: the arguments as NUL-terminated strings, then a NULL pointer. An
    // argument with a NUL byte cannot be passed to C and is refused.
    let args: Result<Vec<CString>, _> = std::env::args().map(CString::new).collect();
    let Ok(args) = args else {
        eprintln!("reduce: an argument contains a NUL byte");
        return std::process::ExitCode::from(2);
    };
    let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    argv.push(std::ptr::null_mut());
    let argc = c_int::try_from(args.len()).expect("fewer than 2^31 arguments");
    // SAFETY: argv holds argc valid C strings followed by NULL, alive for the call;
    // the example does not write through them.
    let status = unsafe { parfor_example_reduce_main(argc, argv.as_mut_ptr()) };
    std::process::ExitCode::from(u8::try_from(status).unwrap_or(1))
}
