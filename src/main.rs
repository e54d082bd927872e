//! Thin binary: all behaviour lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    vnetplane::keep_freed_memory();
    vnetplane::cli::main()
}
