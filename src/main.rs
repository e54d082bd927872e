//! The `vnetplane` command. All modelling lives in the library; this binary
//! parses arguments, renders what the library returns as text or JSON, and
//! sets the exit status.

mod cli;

/// The binary's allocator. The control plane rebuilds its state for every
/// table version; mimalloc's thread-local free lists make those
/// allocations cheaper than the system allocator's (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    alloc_tuning::keep_freed_memory();
    cli::main()
}

mod alloc_tuning {
    #![allow(unsafe_code)]

    /// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the sixteenth
    /// option; `libmimalloc-sys` names no constant for it).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

    /// Makes the allocator keep the memory the program frees instead of
    /// giving it back to the OS a second later (mimalloc's purge delay set
    /// to -1, "no purging"), as dataplanes keep theirs: a large batch of
    /// route changes otherwise runs on pages the OS must fault in and zero
    /// again. The resident size stays at its peak.
    pub fn keep_freed_memory() {
        // SAFETY: `mi_option_set` stores an integer in mimalloc's static
        // option table; it reads and writes no allocation and may be
        // called from any thread at any time. 15 is the purge delay in the
        // mimalloc this crate builds (its default, 1000, is checked below).
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn option_15_is_the_purge_delay() {
            // SAFETY: `mi_option_get` reads an integer from the option table.
            let get = || unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
            // mimalloc 3's default purge delay is 1000 ms (options.c); no
            // other option defaults to 1000.
            let before = get();
            assert!(before == 1000 || before == -1, "option 15 is {before}");
            super::keep_freed_memory();
            assert_eq!(get(), -1);
        }
    }
}
