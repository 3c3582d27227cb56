/*
 * Hybrid MPI + parfor: each rank builds its share of one large array, reduces it with
 * parfor's threads, and MPI combines the ranks' results.
 *
 *  - PARFOR_SUM, the fast sum: one double per rank, combined with MPI_Allreduce.
 *    Its result depends on how the array is split between ranks (floating-point
 *    addition is not associative), and on this data it is far from the true sum.
 *  - The exact sum: each rank accumulates a parfor_exact_state and the states are
 *    merged by MPI_Allreduce with a user-defined op that calls parfor_exact_merge.
 *    The result is the correctly rounded sum of the exact values: bitwise the same
 *    for any number of ranks and threads, and equal to Python's math.fsum.
 *    As a cross-check, the raw state bytes are also gathered on rank 0 and merged
 *    there; both ways must give the same state.
 *
 * Element i of the global array depends on i alone, never on the number of ranks:
 * triples (big, small, -big), where big is up to 2^950 and cancels exactly against
 * an element that may live on another rank, and small is in [-0.5, 0.5) or, now and
 * then, a subnormal.
 *
 * Not part of the default build (it needs MPI). Build and run, after
 * `cargo build --release`:
 *
 *   $ mpicc -std=c99 -O2 -Iinclude c_examples/mpi_reduce.c -Ltarget/release -lparfor \
 *         -Wl,-rpath,$PWD/target/release -lm -o mpi_reduce
 *   PARFOR_NUM_THREADS=2 mpirun -np 4 ./mpi_reduce 12000000
 *
 * (as root add --allow-run-as-root; with more ranks than cores add --oversubscribe).
 * Usage: mpi_reduce [N] [--dump FILE]: N elements in all (default 12000000, a
 * multiple of 3 so that every big value cancels);
 * --dump writes each rank's share as raw native-endian doubles to FILE.<rank>.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "parfor.h"

/* splitmix64's output function: a well-mixed 64-bit value from a counter. */
static uint64_t mix(uint64_t z) {
  z += UINT64_C(0x9E3779B97F4A7C15);
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* A big value, +-[1, 2) * 2^e with e in 600..949: element 3k, and negated, 3k+2. */
static double big(uint64_t k) {
  uint64_t r = mix(2 * k);
  double m = 1.0 + (double)(r >> 11) * 0x1p-53; /* exact: 53 bits */
  double v = ldexp(m, 600 + (int)(r % 350));
  return (r >> 10) & 1 ? -v : v;
}

/* Element i of the global array: a function of i alone. */
static double element(uint64_t i) {
  uint64_t k = i / 3;
  switch (i % 3) {
  case 0:
    return big(k);
  case 2:
    return -big(k);
  default: {
    uint64_t r = mix(2 * k + 1);
    if (r % 97 == 0) {
      /* A subnormal: 40 random bits, below 2^-1034. */
      double sub;
      uint64_t bits = (r >> 24) | (r & (UINT64_C(1) << 63));
      memcpy(&sub, &bits, sizeof sub);
      return sub;
    }
    return (double)(r >> 11) * 0x1p-53 - 0.5;
  }
  }
}

static void check(parfor_status s, const char *what) {
  if (s != PARFOR_OK) {
    fprintf(stderr, "mpi_reduce: %s failed: %s (%s)\n", what, parfor_status_message(s),
            parfor_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

/* MPI user-defined op: inout[i] = inout[i] + in[i] for `len` exact states. */
static void merge_states(void *in, void *inout, int *len, MPI_Datatype *type) {
  const parfor_exact_state *a = (const parfor_exact_state *)in;
  parfor_exact_state *b = (parfor_exact_state *)inout;
  int i;
  (void)type;
  for (i = 0; i < *len; i++) {
    check(parfor_exact_merge(&b[i], &a[i]), "parfor_exact_merge");
  }
}

int main(int argc, char **argv) {
  int rank, size, i;
  uint64_t n = 12000000, lo, hi, j;
  const char *dump = NULL;
  double *local, t0, t_gen, t_fast, t_exact, t_comb_fast, t_comb_exact;
  double local_sum, fast_sum, exact_sum, times[3], *all_times = NULL;
  parfor_exact_state local_state, global_state, gathered_state, *states = NULL;
  MPI_Datatype state_type;
  MPI_Op merge_op;
  uint64_t bits;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) {
      dump = argv[++i];
    } else {
      char *end;
      n = strtoull(argv[i], &end, 10);
      if (*end != '\0' || n == 0) {
        if (rank == 0) {
          fprintf(stderr, "usage: mpi_reduce [N] [--dump FILE]\n");
        }
        MPI_Abort(MPI_COMM_WORLD, 2);
      }
    }
  }

  /* This rank's share: the static block partition of [0, n). */
  lo = n / (uint64_t)size * (uint64_t)rank + (n % (uint64_t)size < (uint64_t)rank ? n % (uint64_t)size : (uint64_t)rank);
  hi = lo + n / (uint64_t)size + ((uint64_t)rank < n % (uint64_t)size ? 1 : 0);
  local = malloc((size_t)(hi - lo) * sizeof *local + 1);
  if (local == NULL) {
    fprintf(stderr, "mpi_reduce: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  t0 = MPI_Wtime();
  for (j = lo; j < hi; j++) {
    local[j - lo] = element(j);
  }
  t_gen = MPI_Wtime() - t0;
  if (dump != NULL) {
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s.%d", dump, rank);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(local, sizeof *local, (size_t)(hi - lo), f) != (size_t)(hi - lo) ||
        fclose(f) != 0) {
      fprintf(stderr, "mpi_reduce: cannot write %s\n", path);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }

  /* The fast sum: reproducible for a given number of ranks, not across them. */
  t0 = MPI_Wtime();
  check(parfor_reduce(local, (size_t)(hi - lo), PARFOR_F64, PARFOR_SUM, NULL, &local_sum),
        "parfor_reduce");
  t_fast = MPI_Wtime() - t0;

  /* The exact sum of this rank's share, as a state that can cross processes. */
  t0 = MPI_Wtime();
  check(parfor_exact_init(&local_state), "parfor_exact_init");
  check(parfor_exact_accumulate(&local_state, local, (size_t)(hi - lo), PARFOR_F64, NULL),
        "parfor_exact_accumulate");
  t_exact = MPI_Wtime() - t0;

  t0 = MPI_Wtime();
  MPI_Allreduce(&local_sum, &fast_sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  t_comb_fast = MPI_Wtime() - t0;

  /* The exact states: PARFOR_EXACT_STATE_WORDS int64_t each, merged by parfor. */
  t0 = MPI_Wtime();
  MPI_Type_contiguous(PARFOR_EXACT_STATE_WORDS, MPI_INT64_T, &state_type);
  MPI_Type_commit(&state_type);
  MPI_Op_create(merge_states, 1 /* commutative: merging is exact */, &merge_op);
  MPI_Allreduce(&local_state, &global_state, 1, state_type, merge_op, MPI_COMM_WORLD);
  t_comb_exact = MPI_Wtime() - t0;
  check(parfor_exact_result(&global_state, PARFOR_F64, &exact_sum), "parfor_exact_result");

  /* Cross-check: ship the raw bytes to rank 0 and merge them there in rank order. */
  if (rank == 0) {
    states = malloc((size_t)size * sizeof *states);
    all_times = malloc((size_t)size * 3 * sizeof *all_times);
    if (states == NULL || all_times == NULL) {
      fprintf(stderr, "mpi_reduce: out of memory\n");
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  MPI_Gather(&local_state, (int)sizeof local_state, MPI_BYTE, states, (int)sizeof local_state,
             MPI_BYTE, 0, MPI_COMM_WORLD);
  times[0] = t_gen;
  times[1] = t_fast;
  times[2] = t_exact;
  MPI_Gather(times, 3, MPI_DOUBLE, all_times, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);

  if (rank == 0) {
    check(parfor_exact_init(&gathered_state), "parfor_exact_init");
    for (i = 0; i < size; i++) {
      check(parfor_exact_merge(&gathered_state, &states[i]), "parfor_exact_merge");
    }
    if (memcmp(&gathered_state, &global_state, sizeof global_state) != 0) {
      fprintf(stderr, "mpi_reduce: gathered and reduced exact states differ\n");
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    printf("mpi_reduce: %d ranks x %zu threads, n = %" PRIu64 "\n", size, parfor_num_threads(),
           n);
    for (i = 0; i < size; i++) {
      printf("rank %d: generate %.3f ms, parfor SUM %.3f ms, parfor exact %.3f ms\n", i,
             all_times[3 * i] * 1e3, all_times[3 * i + 1] * 1e3, all_times[3 * i + 2] * 1e3);
    }
    printf("combine: MPI_Allreduce of SUM %.3f ms, of exact states %.3f ms\n", t_comb_fast * 1e3,
           t_comb_exact * 1e3);
    printf("fast sum  = %a = %.17g\n", fast_sum, fast_sum);
    printf("exact sum = %a = %.17g\n", exact_sum, exact_sum);
    memcpy(&bits, &exact_sum, sizeof bits);
    printf("exact bits = 0x%016" PRIx64 "\n", bits);
    free(states);
    free(all_times);
  }

  MPI_Op_free(&merge_op);
  MPI_Type_free(&state_type);
  free(local);
  MPI_Finalize();
  return 0;
}
