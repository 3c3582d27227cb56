//! Keeping a worker off its leader's CPU.
//!
//! A fork-join only pays off when the leader and its workers run at the same time on
//! different CPUs. Linux places a thread woken from a futex by its waker's side, and
//! measured on the 2-core target machine (a KVM guest) the woken worker often lands
//! on the leader's own CPU and stays there while both spin: then every call costs a
//! hand-off of the CPU (2.8-3.0 us per 2-item loop, against 0.75 us when the worker
//! runs on the other CPU; 2000 calls out of 2000 stayed co-located in some rounds).
//! The load balancer would separate them only after milliseconds.
//!
//! So a worker that sees, on receiving a job, that it runs on the CPU its leader
//! announced moves itself: it narrows its affinity mask to exclude that CPU (the
//! kernel migrates it at once) and then restores the mask it had, so it is never
//! pinned and `taskset` or cgroup changes keep their effect. When the mask allows no
//! other CPU it stays. The check costs one `sched_getcpu` (a read of the rseq area
//! with glibc 2.35 and later); the move, a few microseconds, happens only when the
//! scheduler co-located the two.

/// The CPU the calling thread runs on, or -1 where that cannot be known.
pub(crate) fn current_cpu() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no preconditions; it returns -1 on failure.
        unsafe { libc::sched_getcpu() }
    }
    #[cfg(not(target_os = "linux"))]
    {
        -1
    }
}

/// Moves the calling thread off `cpu` if its affinity mask allows another CPU, then
/// restores the mask. Returns whether it moved.
pub(crate) fn move_off(cpu: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(cpu) = usize::try_from(cpu) else {
            return false;
        };
        let set_size = std::mem::size_of::<libc::cpu_set_t>();
        if cpu >= 8 * set_size {
            return false;
        }
        // SAFETY: cpu_set_t is a plain bit array, valid when zeroed.
        let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `mask` is a writable cpu_set_t of `set_size` bytes; pid 0 is this thread.
        if unsafe { libc::sched_getaffinity(0, set_size, &mut mask) } != 0 {
            return false;
        }
        let mut away = mask;
        // SAFETY: cpu < CPU_SETSIZE (checked above), the bound CPU_CLR needs;
        // CPU_COUNT only reads the set.
        let left = unsafe {
            libc::CPU_CLR(cpu, &mut away);
            libc::CPU_COUNT(&away)
        };
        if left == 0 {
            return false;
        }
        // SAFETY: both masks are valid cpu_set_t values of `set_size` bytes. The first
        // call migrates this thread to a CPU of `away`; the second only widens the
        // mask again, which does not move it back.
        unsafe {
            if libc::sched_setaffinity(0, set_size, &away) != 0 {
                return false;
            }
            libc::sched_setaffinity(0, set_size, &mask);
        }
        true
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        false
    }
}
