//! The library as a user installs and uses it: `make install` into a temporary prefix
//! (the libraries of this cargo run, NO_BUILD=1), the layout it writes (versioned
//! file name, SONAME, links, static archive, header, pkg-config file, CMake package),
//! the exported symbols (parfor_* only, each in the PARFOR_0 version node), and the
//! external project tests/install/ built three ways against the prefix: with
//! `pkg-config --cflags --libs parfor`, with CMake's find_package(parfor 0.2) and
//! parfor::parfor, and statically with `pkg-config --static`. Each program runs with
//! the library found through its SONAME and the rpath into the prefix, never through
//! LD_LIBRARY_PATH. Also: DESTDIR staging and `make uninstall`, and the ABI check
//! (abi/check.sh) passing for this library and failing for a broken one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{lib_dir, require, root, scratch};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");

/// Runs a command, panicking with its output unless it exits 0.
fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A fresh, empty directory under this test's scratch space.
fn fresh(name: &str) -> PathBuf {
    let dir = scratch("install").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// `make -C <root> <target> NO_BUILD=1 BUILD_DIR=<this run's libraries> DIST=<dist>`
/// plus `vars`: what `make install` does, with the libraries cargo just built.
fn make(target: &str, dist: &Path, vars: &[(&str, &Path)]) -> Output {
    require("make", "make");
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(root())
        .arg(target)
        .arg("NO_BUILD=1")
        .arg(format!("BUILD_DIR={}", lib_dir().display()))
        .arg(format!("DIST={}", dist.display()));
    for (k, v) in vars {
        cmd.arg(format!("{k}={}", v.display()));
    }
    run(&mut cmd)
}

/// Installs into a fresh prefix named `name` and returns it.
fn install(name: &str) -> PathBuf {
    let base = fresh(name);
    let prefix = base.join("prefix");
    make("install", &base.join("dist"), &[("PREFIX", &prefix)]);
    prefix
}

fn readelf_dynamic(file: &Path) -> String {
    require("readelf", "binutils");
    stdout(&run(Command::new("readelf").arg("-d").arg(file)))
}

/// The program's output with the loader left to its own devices: no
/// LD_LIBRARY_PATH, so the library must come through the SONAME and the rpath.
fn run_app(app: &Path) -> String {
    let out = run(Command::new(app).env_remove("LD_LIBRARY_PATH"));
    stdout(&out)
}

fn assert_app_ok(app: &Path) {
    let out = run_app(app);
    assert_eq!(
        out.trim(),
        format!("parfor {VERSION} ok 499999500000"),
        "{}",
        app.display()
    );
}

/// A shared build: NEEDED is the SONAME, the rpath points into the prefix, and the
/// loader resolves the library there.
fn assert_uses_installed_shared_library(app: &Path, prefix: &Path) {
    let dynamic = readelf_dynamic(app);
    assert!(
        dynamic.contains(&format!("Shared library: [libparfor.so.{MAJOR}]")),
        "{} does not need libparfor.so.{MAJOR}:\n{dynamic}",
        app.display()
    );
    let libdir = prefix.join("lib");
    assert!(
        dynamic.contains(&libdir.display().to_string()),
        "{} has no rpath into {}:\n{dynamic}",
        app.display(),
        libdir.display()
    );
    let ldd = stdout(&run(Command::new("ldd")
        .arg(app)
        .env_remove("LD_LIBRARY_PATH")));
    let expected = format!(
        "libparfor.so.{MAJOR} => {}",
        libdir.join(format!("libparfor.so.{MAJOR}")).display()
    );
    assert!(ldd.contains(&expected), "ldd {}:\n{ldd}", app.display());
}

/// A shell command line run with `sh -c` in `dir`, with pkg-config reading `prefix`.
fn sh(dir: &Path, prefix: &Path, line: &str) -> Output {
    require("pkg-config", "pkg-config");
    require("cc", "gcc");
    run(Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PKG_CONFIG_PATH", prefix.join("lib").join("pkgconfig")))
}

fn app_source() -> PathBuf {
    root().join("tests").join("install").join("app.c")
}

#[test]
fn install_writes_the_layout() {
    let prefix = install("layout");
    let lib = prefix.join("lib");
    let real = lib.join(format!("libparfor.so.{VERSION}"));
    assert!(real.is_file() && !real.is_symlink(), "{}", real.display());
    let link =
        |name: &str| std::fs::read_link(lib.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        link(&format!("libparfor.so.{MAJOR}")),
        PathBuf::from(format!("libparfor.so.{VERSION}"))
    );
    assert_eq!(
        link("libparfor.so"),
        PathBuf::from(format!("libparfor.so.{MAJOR}"))
    );
    for file in [
        "lib/libparfor.a",
        "include/parfor.h",
        "lib/pkgconfig/parfor.pc",
        "lib/cmake/parfor/parforConfig.cmake",
        "lib/cmake/parfor/parforConfigVersion.cmake",
    ] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }
    assert_eq!(
        std::fs::read(prefix.join("include/parfor.h")).unwrap(),
        std::fs::read(root().join("include/parfor.h")).unwrap()
    );

    let dynamic = readelf_dynamic(&real);
    assert!(
        dynamic.contains(&format!("Library soname: [libparfor.so.{MAJOR}]")),
        "{dynamic}"
    );
    // Exported (defined, global) symbols: parfor_* only, each in PARFOR_0.
    let syms = stdout(&run(Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(&real)));
    let mut exported = Vec::new();
    for line in syms.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // The version node itself is an absolute symbol named PARFOR_0.
        let node = f.len() >= 8 && f[6] == "ABS" && f[7] == "PARFOR_0";
        if f.len() >= 8 && (f[4] == "GLOBAL" || f[4] == "WEAK") && f[6] != "UND" && !node {
            exported.push(f[7].to_string());
        }
    }
    assert!(exported.len() >= 20, "too few exports: {exported:?}");
    for name in &exported {
        assert!(
            name.starts_with("parfor_") && name.ends_with("@@PARFOR_0"),
            "{name} exported (only parfor_*@@PARFOR_0 may be)"
        );
    }
    for f in [
        "parfor_version",
        "parfor_for",
        "parfor_reduce",
        "parfor_last_error",
    ] {
        assert!(
            exported.contains(&format!("{f}@@PARFOR_0")),
            "{f} not exported"
        );
    }

    // The pkg-config file: version, paths into the prefix, the static extras.
    let pc = |args: &[&str]| {
        let out = run(Command::new("pkg-config")
            .args(args)
            .arg("parfor")
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig")));
        stdout(&out).trim().to_string()
    };
    require("pkg-config", "pkg-config");
    assert_eq!(pc(&["--modversion"]), VERSION);
    assert_eq!(
        pc(&["--cflags"]),
        format!("-I{}", prefix.join("include").display())
    );
    assert_eq!(pc(&["--libs"]), format!("-L{} -lparfor", lib.display()));
    assert_eq!(
        pc(&["--static", "--libs"]),
        format!("-L{} -lparfor -lpthread -ldl -lm", lib.display())
    );
    assert!(Command::new("pkg-config")
        .args(["--atleast-version=0.2", "parfor"])
        .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
        .status()
        .unwrap()
        .success());
}

#[test]
fn external_project_builds_three_ways_and_runs_from_the_prefix() {
    let prefix = install("consumer");
    let work = fresh("consumer-build");
    let src = app_source();
    let src = src.display();

    // 1. pkg-config, shared; the rpath into the prefix as README shows it.
    sh(
        &work,
        &prefix,
        &format!(
            "cc -std=c99 -Wall -Wextra -Werror -O2 {src} $(pkg-config --cflags --libs parfor) \
             -Wl,-rpath,$(pkg-config --variable=libdir parfor) -o app_pkgconfig"
        ),
    );
    let app = work.join("app_pkgconfig");
    assert_uses_installed_shared_library(&app, &prefix);
    assert_app_ok(&app);

    // 2. CMake: find_package(parfor 0.2 REQUIRED) + parfor::parfor (and the static
    //    target), configured against the prefix only.
    require("cmake", "cmake");
    let build = work.join("cmake");
    run(Command::new("cmake")
        .arg("-S")
        .arg(root().join("tests").join("install"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .arg("-DCMAKE_BUILD_TYPE=Release"));
    run(Command::new("cmake").arg("--build").arg(&build));
    let app = build.join("app");
    assert_uses_installed_shared_library(&app, &prefix);
    assert_app_ok(&app);
    let app = build.join("app_static");
    assert!(
        !readelf_dynamic(&app).contains("libparfor"),
        "app_static needs libparfor.so"
    );
    assert_app_ok(&app);

    // 3. Static, with pkg-config --static for the system libraries libparfor.a needs.
    sh(
        &work,
        &prefix,
        &format!("cc -std=c99 -Wall -Wextra -Werror -O2 {src} {STATIC_FLAGS} -o app_static"),
    );
    let app = work.join("app_static");
    assert!(
        !readelf_dynamic(&app).contains("libparfor"),
        "app_static needs libparfor.so"
    );
    assert_app_ok(&app);
}

/// The static link line README.md gives (after the source file): -Bstatic makes the
/// linker take the archives of what `pkg-config --static --libs` names.
const STATIC_FLAGS: &str =
    "$(pkg-config --cflags parfor) -Wl,-Bstatic $(pkg-config --static --libs parfor) -Wl,-Bdynamic";

#[test]
fn cmake_refuses_a_newer_or_other_major_version() {
    require("cmake", "cmake");
    let prefix = install("cmake-versions");
    let work = fresh("cmake-versions-build");
    let (major, minor): (u64, u64) = (
        MAJOR.parse().unwrap(),
        env!("CARGO_PKG_VERSION_MINOR").parse().unwrap(),
    );
    for (request, found) in [
        (format!("{major}.{minor}"), true),
        (format!("{major}.{}", minor + 1), false),
        (format!("{}.0", major + 1), false),
    ] {
        let dir = work.join(request.replace('.', "_"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("CMakeLists.txt"),
            format!(
                "cmake_minimum_required(VERSION 3.16)\nproject(v C)\nfind_package(parfor {request})\n\
                 if(parfor_FOUND)\n  message(STATUS \"FOUND parfor ${{parfor_VERSION}}\")\nendif()\n"
            ),
        )
        .unwrap();
        let out = run(Command::new("cmake")
            .arg("-S")
            .arg(&dir)
            .arg("-B")
            .arg(dir.join("build"))
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
        let text = stdout(&out);
        assert_eq!(
            text.contains(&format!("FOUND parfor {VERSION}")),
            found,
            "find_package(parfor {request}):\n{text}"
        );
    }
}

#[test]
fn destdir_staging_and_uninstall() {
    let base = fresh("destdir");
    let stage = base.join("stage");
    let prefix = PathBuf::from("/opt/parfor-test");
    let vars = [("PREFIX", prefix.as_path()), ("DESTDIR", stage.as_path())];
    make("install", &base.join("dist"), &vars);
    let staged = stage.join("opt/parfor-test");
    assert!(staged.join(format!("lib/libparfor.so.{VERSION}")).is_file());
    assert!(!prefix.exists(), "install wrote outside DESTDIR");
    // The files name the final prefix, not the staging directory.
    let pc = std::fs::read_to_string(staged.join("lib/pkgconfig/parfor.pc")).unwrap();
    assert!(
        pc.contains("prefix=/opt/parfor-test\n") && !pc.contains(&stage.display().to_string()),
        "{pc}"
    );
    let cmake =
        std::fs::read_to_string(staged.join("lib/cmake/parfor/parforConfig.cmake")).unwrap();
    assert!(
        cmake.contains("/opt/parfor-test/lib/libparfor.so.")
            && !cmake.contains(&stage.display().to_string())
    );

    make("uninstall", &base.join("dist"), &vars);
    let mut left = Vec::new();
    for entry in walk(&stage) {
        if !entry.is_dir() {
            left.push(entry);
        }
    }
    assert!(left.is_empty(), "uninstall left {left:?}");
    assert!(!staged.join("lib/cmake/parfor").exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
