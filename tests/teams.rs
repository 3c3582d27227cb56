//! Teams larger than the machine (issue 14, "many cores"): the fork-join team is
//! correct at 8-64 threads on any machine, here typically 2 CPUs. Every index of a
//! loop runs once with a thread index below the team size, and float reductions
//! give the same bits as on one thread, for every team size up to 64 and every
//! schedule. Correctness only: a timing at 64 threads on 2 CPUs says nothing.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use parfor::{parallel_for, reduce, Options, ReduceOp, Schedule};

const SIZES: [usize; 8] = [8, 9, 16, 17, 31, 32, 33, 64];

#[test]
fn loops_cover_every_index_once_on_teams_up_to_64() {
    let n = 10_000;
    for k in SIZES {
        for schedule in [Schedule::Static, Schedule::Dynamic, Schedule::Guided] {
            let opts = Options::new(k, schedule, 0).expect("valid options");
            let seen: Vec<AtomicU8> = (0..n).map(|_| AtomicU8::new(0)).collect();
            let max_index = AtomicUsize::new(0);
            parallel_for(0..n, &opts, |r| {
                max_index.fetch_max(parfor::thread_index(), Ordering::Relaxed);
                for i in r {
                    seen[i].fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), ()>(())
            })
            .expect("loop runs");
            assert!(
                seen.iter().all(|s| s.load(Ordering::Relaxed) == 1),
                "team {k}, {schedule:?}: an index ran other than once"
            );
            assert!(
                max_index.load(Ordering::Relaxed) < k,
                "team {k}: index past the team"
            );
        }
    }
}

#[test]
fn float_sums_have_the_same_bits_on_teams_up_to_64() {
    // Large enough to be cut into many blocks, with values whose sum rounds.
    let x: Vec<f64> = (0..3_000_003u64)
        .map(|i| ((i * 2_654_435_761) % 1_000_003) as f64 * 1e-3 + 1.0 / (i + 1) as f64)
        .collect();
    let one = reduce(&x, ReduceOp::Sum, &Options::with_threads(1).unwrap()).unwrap();
    for k in SIZES {
        for schedule in [Schedule::Static, Schedule::Dynamic] {
            let opts = Options::new(k, schedule, 0).unwrap();
            let got = reduce(&x, ReduceOp::Sum, &opts).unwrap();
            assert_eq!(got.to_bits(), one.to_bits(), "team {k}, {schedule:?}");
        }
    }
}
