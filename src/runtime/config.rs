//! Configuration read once from the environment: default team size, wait policy,
//! nesting. Malformed values are reported once on stderr and the next rule applies.

use std::time::Duration;

use super::once::ForkOnce;

/// How long an idle thread spins before it parks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitPolicy {
    /// Spin for a bounded time, then park (the default).
    Spin(Duration),
    /// Spin (yielding the CPU now and then) until work arrives; never park.
    Active,
    /// Park at once: idle threads burn no CPU.
    Passive,
}

/// Default spin before parking, chosen for users, not for a benchmark row: a wake
/// from park costs the next call 35-140 us (futex wake-ups measured on the 2-core
/// VMs, Intel and AMD), while spinning costs CPU time that other processes could
/// use. A program that calls parfor at least every few milliseconds (a solver's
/// time steps, a request loop) then never pays a wake; one idle for longer pays one
/// wake per burst and at most 5 ms of CPU per worker after each burst, under 1 % of
/// a core for a program that pauses for half a second or more. libgomp spins a few
/// milliseconds by default (GOMP_SPINCOUNT 300,000) and LLVM libomp 200 ms
/// (KMP_BLOCKTIME), so 5 ms is no greedier than the runtimes users replace.
/// `PARFOR_SPIN_US` and the wait policies change it (see the README, "Waiting").
pub const DEFAULT_SPIN: Duration = Duration::from_millis(5);

/// When a call runs on the threads of the process's OpenMP runtime instead of
/// parfor's own team (see `omp.rs`), from PARFOR_OMP_TEAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OmpTeam {
    /// While parfor's workers are being kept off the CPUs (by spinning OpenMP
    /// workers, typically) and an OpenMP runtime is loaded: the default.
    Auto,
    /// Whenever an OpenMP runtime is loaded.
    Always,
    /// Never.
    Never,
}

/// The configuration in force for this process.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Team size from the environment or the machine.
    pub default_threads: usize,
    /// Wait policy from PARFOR_WAIT_POLICY / OMP_WAIT_POLICY / PARFOR_SPIN_US.
    pub wait: WaitPolicy,
    /// PARFOR_NESTED=1: use the team from inside OpenMP regions and parfor bodies.
    pub nested: bool,
    /// CPUs this process may run on (affinity mask and cgroup quota), whatever the
    /// environment says about team sizes.
    pub cpus: usize,
    /// PARFOR_OMP_TEAM: when to borrow the OpenMP runtime's threads.
    pub omp_team: OmpTeam,
    /// PARFOR_TREE_FANOUT: children per node of the post-and-join tree that calls of
    /// more than 8 helpers use; 0: no tree (the leader posts to every helper).
    pub tree_fanout: usize,
}

/// Children per node of the post-and-join tree, as libomp's tree barrier's default
/// branching (4): at 16 threads two levels, at 64 three, at 256 four; each level
/// costs one line transfer per child on its node's path. `PARFOR_TREE_FANOUT`
/// changes it (2..=16, or 0 for no tree).
pub(crate) const DEFAULT_TREE_FANOUT: usize = 4;

/// The configuration, read from the environment on first use.
pub fn config() -> &'static Config {
    // First, so that a fork during the initialisation below finds the child handler
    // in place to reset the cell.
    super::register_fork_handler();
    CONFIG.get_or_init(|| from_env(&env_text, &mut |m| warn(&m)))
}

/// The configuration cell (a [`ForkOnce`]: a child forked while another thread read
/// the environment reads it again).
pub(super) static CONFIG: ForkOnce<Config> = ForkOnce::new();

/// Writes "parfor: `message`" to stderr with one `write(2)`: no lock that a fork
/// could leave held (`eprintln!` takes stderr's), no panic when stderr is closed.
pub(super) fn warn(message: &str) {
    let line = format!("parfor: {message}\n");
    // SAFETY: writes `line.len()` bytes from a live buffer to fd 2; errors are ignored
    // (there is nowhere left to report them).
    let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

/// A variable's value as text. A value that is not UTF-8 is kept, with each bad byte
/// shown as U+FFFD, so that it fails to parse and gets the one warning every
/// malformed value gets (`std::env::var` would report it as unset).
fn env_text(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Builds the configuration from an environment lookup; `warn` receives the message
/// for each malformed value. Separate from `config` so that tests can feed it.
pub fn from_env(get: &dyn Fn(&str) -> Option<String>, warn: &mut dyn FnMut(String)) -> Config {
    let cpus = machine_threads();
    let default_threads = team_size_from_env(get, warn).unwrap_or(cpus);
    let policy = match get("PARFOR_WAIT_POLICY") {
        Some(v) => Some(("PARFOR_WAIT_POLICY", v)),
        None => get("OMP_WAIT_POLICY").map(|v| ("OMP_WAIT_POLICY", v)),
    };
    let mut wait = WaitPolicy::Spin(DEFAULT_SPIN);
    if let Some((name, v)) = policy {
        match v.trim().to_ascii_lowercase().as_str() {
            "active" => wait = WaitPolicy::Active,
            "passive" => wait = WaitPolicy::Passive,
            "" => {}
            _ => warn(format!(
                "ignoring {name}={v:?}: expected \"active\" or \"passive\""
            )),
        }
    }
    if wait == WaitPolicy::Spin(DEFAULT_SPIN) {
        if let Some(v) = get("PARFOR_SPIN_US") {
            match v.trim().parse::<u64>() {
                Ok(us) => wait = WaitPolicy::Spin(Duration::from_micros(us)),
                Err(_) => warn(format!(
                    "ignoring PARFOR_SPIN_US={v:?}: expected a number of microseconds"
                )),
            }
        }
    }
    let nested = match get("PARFOR_NESTED") {
        None => false,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" | "" => false,
            _ => {
                warn(format!("ignoring PARFOR_NESTED={v:?}: expected 0 or 1"));
                false
            }
        },
    };
    let omp_team = match get("PARFOR_OMP_TEAM") {
        None => OmpTeam::Auto,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => OmpTeam::Auto,
            "always" => OmpTeam::Always,
            "never" => OmpTeam::Never,
            _ => {
                warn(format!(
                    "ignoring PARFOR_OMP_TEAM={v:?}: expected auto, always or never"
                ));
                OmpTeam::Auto
            }
        },
    };
    let tree_fanout = match get("PARFOR_TREE_FANOUT") {
        None => DEFAULT_TREE_FANOUT,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(f) if f == 0 || (2..=super::team::MAX_FANOUT).contains(&f) => f,
            _ => {
                warn(format!(
                    "ignoring PARFOR_TREE_FANOUT={v:?}: expected 0 (no tree) or 2 to {}",
                    super::team::MAX_FANOUT
                ));
                DEFAULT_TREE_FANOUT
            }
        },
    };
    Config {
        default_threads,
        wait,
        nested,
        cpus,
        omp_team,
        tree_fanout,
    }
}

/// PARFOR_NUM_THREADS, else the first value of OMP_NUM_THREADS ("4,2" nests in
/// OpenMP; parfor takes the outer level). `None` when neither gives a valid size.
fn team_size_from_env(
    get: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(String),
) -> Option<usize> {
    for name in ["PARFOR_NUM_THREADS", "OMP_NUM_THREADS"] {
        let Some(v) = get(name) else { continue };
        let first = v.split(',').next().unwrap_or("").trim();
        match first.parse::<usize>() {
            Ok(n) if (1..=super::MAX_THREADS).contains(&n) => return Some(n),
            _ => warn(format!(
                "ignoring {name}={v:?}: expected a whole number from 1 to {}",
                super::MAX_THREADS
            )),
        }
    }
    None
}

/// CPUs this process may run on. The standard library's answer already honours the
/// affinity mask (sched_getaffinity) and cgroup v1/v2 CPU quotas.
fn machine_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(super::MAX_THREADS)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::collections::HashMap;

    fn run(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut warnings = Vec::new();
        let c = from_env(&|k| map.get(k).cloned(), &mut |m| warnings.push(m));
        (c, warnings)
    }

    #[test]
    fn team_size_rules() {
        let machine = machine_threads();
        assert_eq!(run(&[]).0.default_threads, machine);
        assert_eq!(run(&[("PARFOR_NUM_THREADS", "3")]).0.default_threads, 3);
        assert_eq!(run(&[("OMP_NUM_THREADS", "5,2")]).0.default_threads, 5);
        assert_eq!(
            run(&[("PARFOR_NUM_THREADS", "3"), ("OMP_NUM_THREADS", "5")])
                .0
                .default_threads,
            3
        );
        let (c, w) = run(&[("PARFOR_NUM_THREADS", "lots"), ("OMP_NUM_THREADS", "6")]);
        assert_eq!(c.default_threads, 6);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("PARFOR_NUM_THREADS=\"lots\""), "{w:?}");
        let (c, w) = run(&[("OMP_NUM_THREADS", "0")]);
        assert_eq!(c.default_threads, machine);
        assert!(w[0].contains("OMP_NUM_THREADS"));
    }

    #[test]
    fn wait_policy_rules() {
        assert_eq!(run(&[]).0.wait, WaitPolicy::Spin(DEFAULT_SPIN));
        assert_eq!(
            run(&[("OMP_WAIT_POLICY", "PASSIVE")]).0.wait,
            WaitPolicy::Passive
        );
        assert_eq!(
            run(&[
                ("PARFOR_WAIT_POLICY", "active"),
                ("OMP_WAIT_POLICY", "passive")
            ])
            .0
            .wait,
            WaitPolicy::Active
        );
        assert_eq!(
            run(&[("PARFOR_SPIN_US", "50")]).0.wait,
            WaitPolicy::Spin(Duration::from_micros(50))
        );
        let (c, w) = run(&[("PARFOR_WAIT_POLICY", "sometimes")]);
        assert_eq!(c.wait, WaitPolicy::Spin(DEFAULT_SPIN));
        assert_eq!(w.len(), 1);
        assert!(run(&[("PARFOR_NESTED", "1")]).0.nested);
        assert!(!run(&[]).0.nested);
    }

    #[test]
    fn omp_team_rules() {
        assert_eq!(run(&[]).0.omp_team, OmpTeam::Auto);
        assert_eq!(
            run(&[("PARFOR_OMP_TEAM", "Always")]).0.omp_team,
            OmpTeam::Always
        );
        assert_eq!(
            run(&[("PARFOR_OMP_TEAM", "never")]).0.omp_team,
            OmpTeam::Never
        );
        let (c, w) = run(&[("PARFOR_OMP_TEAM", "sometimes")]);
        assert_eq!(run(&[]).0.tree_fanout, DEFAULT_TREE_FANOUT);
        assert_eq!(run(&[("PARFOR_TREE_FANOUT", "0")]).0.tree_fanout, 0);
        assert_eq!(run(&[("PARFOR_TREE_FANOUT", " 8 ")]).0.tree_fanout, 8);
        for bad in ["1", "17", "wide"] {
            let (t, w) = run(&[("PARFOR_TREE_FANOUT", bad)]);
            assert_eq!(t.tree_fanout, DEFAULT_TREE_FANOUT, "{bad}");
            assert!(w[0].contains("PARFOR_TREE_FANOUT"), "{w:?}");
        }
        assert_eq!(c.omp_team, OmpTeam::Auto);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("PARFOR_OMP_TEAM=\"sometimes\""), "{w:?}");
    }
}
