//! Generates `include/audioroom.h` from `src/ffi/` (and the log levels of `src/log.rs`) with cbindgen and checks that the committed
//! header matches: a stale header fails the build (regenerate with `AUDIOROOM_WRITE_HEADER=1`,
//! or `make header`). It then compiles a C file that includes the header with warnings as errors,
//! so the header is known to be valid C.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/log.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/audioroom.h");
    println!("cargo:rerun-if-env-changed=AUDIOROOM_WRITE_HEADER");

    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let generated = out.join("audioroom.h");
    cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&generated);

    let committed = root.join("include/audioroom.h");
    let fresh = fs::read_to_string(&generated).unwrap();
    let current = fs::read_to_string(&committed).unwrap_or_default();
    if fresh != current {
        if env::var_os("AUDIOROOM_WRITE_HEADER").is_some() {
            fs::write(&committed, &fresh).expect("cannot write include/audioroom.h");
            println!("cargo:warning=include/audioroom.h regenerated");
        } else {
            panic!(
                "include/audioroom.h is stale: src/ffi/ changed the C API. \
                 Regenerate it with `AUDIOROOM_WRITE_HEADER=1 cargo build` (or `make header`) and commit it."
            );
        }
    }

    // The header must compile as strict C on its own.
    let probe = out.join("header_probe.c");
    fs::write(&probe, "#include \"audioroom.h\"\nint audioroom_header_probe(void) { return (int)AUDIOROOM_RESULT_OK; }\n").unwrap();
    cc::Build::new()
        .file(&probe)
        .include(root.join("include"))
        .flag("-std=c99")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .compile("audioroom_header_probe");
}
