//! The build lines users copy, run verbatim: each `$ ` command in the header comment
//! of c_examples/*.c, and the README's C example with its build lines (the shell
//! block after "## A C example" whose lines start with `cc`). They run with `sh -c`
//! from a directory laid out like the repository after `cargo build --release`
//! (include/ and c_examples/ of this checkout, target/release/ holding this run's
//! libraries), so `$PWD/target/release` in an rpath means what it means to a user.
//! Each program built is then run with LD_LIBRARY_PATH unset and must exit 0.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{lib_dir, require, root, scratch};

/// A scratch directory that looks like the repository root after a release build.
fn repository_view(name: &str) -> PathBuf {
    let view = scratch("build_lines").join(name);
    let _ = std::fs::remove_dir_all(&view);
    std::fs::create_dir_all(view.join("target")).unwrap();
    let link = |target: &Path, at: &Path| std::os::unix::fs::symlink(target, at).unwrap();
    link(&root().join("include"), &view.join("include"));
    link(&root().join("c_examples"), &view.join("c_examples"));
    link(&lib_dir(), &view.join("target").join("release"));
    view
}

/// The commands of a C comment: lines ` *   $ cmd \`, continued on following lines.
fn commands_in_comment(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let body = line.trim_start().trim_start_matches('*').trim();
        if let Some(cmd) = current.as_mut() {
            cmd.push(' ');
            cmd.push_str(body.trim_end_matches('\\').trim());
            if !body.ends_with('\\') {
                commands.push(current.take().unwrap());
            }
            continue;
        }
        if let Some(cmd) = body.strip_prefix("$ ") {
            if cmd.ends_with('\\') {
                current = Some(cmd.trim_end_matches('\\').trim().to_string());
            } else {
                commands.push(cmd.to_string());
            }
        }
        if line.contains("*/") {
            break;
        }
    }
    commands
}

fn sh(dir: &Path, line: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{line}` failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `-o NAME` of a command line.
fn output_of(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == "-o")
        .expect("the line names its output with -o");
    words[i + 1].to_string()
}

fn run_program(dir: &Path, program: &str, args: &[&str]) {
    let path = dir.join(program);
    let out = Command::new(&path)
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env("PARFOR_NUM_THREADS", "2")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{program} exited with {:?}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds one example with its documented line(s); runs it unless `run` is None.
fn example(file: &str, compiler: (&str, &str), run: Option<&[&str]>) {
    require(compiler.0, compiler.1);
    let text = std::fs::read_to_string(root().join("c_examples").join(file)).unwrap();
    let commands = commands_in_comment(&text);
    assert_eq!(
        commands.len(),
        1,
        "{file}: expected one `$ ` build line, found {commands:?}"
    );
    let view = repository_view(file);
    sh(&view, &commands[0]);
    if let Some(args) = run {
        run_program(&view, &output_of(&commands[0]), args);
    }
}

#[test]
fn hello_for_builds_as_documented() {
    example("hello_for.c", ("cc", "gcc"), Some(&[]));
}

#[test]
fn reduce_builds_as_documented() {
    example("reduce.c", ("cc", "gcc"), Some(&["10007"]));
}

#[test]
fn custom_reduce_builds_as_documented() {
    example("custom_reduce.c", ("cc", "gcc"), Some(&[]));
}

#[test]
fn omp_compare_builds_as_documented() {
    // Built only: running it is the comparison's job (compare/, tests/interop.rs).
    example("omp_compare.c", ("gcc", "gcc"), None);
}

#[test]
fn mpi_reduce_builds_as_documented() {
    // Built only: tests/mpi.rs runs it under mpirun.
    example("mpi_reduce.c", ("mpicc", "libopenmpi-dev"), None);
}

#[test]
fn readme_c_example_builds_and_runs_as_documented() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## A C example\n")
        .nth(1)
        .expect("README has a '## A C example' section");
    let section = section.split("\n## ").next().unwrap();
    let c = section
        .split("```c\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("the section has a ```c block");
    let shell = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("the section has a ```sh block with the build lines");
    let lines: Vec<&str> = shell
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim())
        .filter(|l| l.starts_with("cc "))
        .collect();
    assert!(
        lines.len() >= 2,
        "expected the shared and the static build line: {shell}"
    );
    require("cc", "gcc");
    let view = repository_view("readme");
    std::fs::write(view.join("ex.c"), format!("{c}\n")).unwrap();
    for line in lines {
        sh(&view, line);
        run_program(&view, &output_of(line), &[]);
    }
}

#[test]
fn comment_parser_reads_continued_lines() {
    let text = "/* x\n * Build:\n *   $ cc a.c \\\n *       -o a\n *   $ cc b.c -o b\n * $notacommand\n */\n *   $ after\n";
    assert_eq!(
        commands_in_comment(text),
        vec!["cc a.c -o a", "cc b.c -o b"]
    );
}
