"""parfor's numpy-named reductions against numpy itself.

Seeded property tests: random shapes up to 5-D (extents 0..4), random views (slices
with steps of either sign, transposes, broadcasts), every dtype x function x axis
(None, int, tuple) x keepdims. Integer and bool results must equal numpy's exactly,
dtype included; float sums must lie within parfor's accuracy bound of the exact sum
of each slice (``math.fsum``); NaN placement, warnings and errors as numpy's. Also
one test per row of the first table of issue 12, and the input rules (MaskedArray,
float16, complex, misaligned views, dot's 1-D rule).

While the loaded library predates the N-d entry points these run against the numpy
model in _nd_model.py (see _support.py); afterwards against the library.

PARFOR_SEMANTICS_CASES (default 1500) sets the number of random cases per test,
PARFOR_SEMANTICS_SEED (default 0) shifts the seeds.
"""

import math
import os
import unittest
import warnings

import numpy as np

from _support import parfor  # noqa: I001 - first: it installs the model if needed

import _nd_model

CASES = int(os.environ.get("PARFOR_SEMANTICS_CASES", "1500"))
# Added to every seed: other values draw other cases (the default is what CI runs).
SEED = int(os.environ.get("PARFOR_SEMANTICS_SEED", "0"))
DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float32, np.float64]
FLOATS = (np.float32, np.float64)
# Warnings whose presence must match numpy's (the text without its final period).
NUMPY_WARNINGS = ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0 for slice")


def random_values(rng, dtype, shape, nan_fraction=0.0):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if rng.random() < 0.5:
            # Small values: sums and products that do not wrap...
            return rng.integers(max(info.min, -3), min(info.max, 4), shape, endpoint=True).astype(dt)
        # ...and the full range, where they wrap (identically to numpy's).
        return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    x = np.asarray(rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dt)
    if nan_fraction:
        x[rng.random(shape) < nan_fraction] = np.nan
    return x


def random_view(rng, dtype, nan_fraction=0.0):
    """A random view of up to 5 dimensions into a fresh array of ``dtype``."""
    ndim = int(rng.integers(0, 6))
    shape = [int(n) for n in rng.integers(0, 5, ndim)]
    if rng.random() < 0.7:
        shape = [n if n else 1 for n in shape]  # empty slices now and then only
    steps = [int(rng.choice([1, 1, -1, 2, -2])) for _ in shape]
    base_shape = [n * abs(s) + int(rng.integers(0, 2)) for n, s in zip(shape, steps)]
    base = random_values(rng, dtype, base_shape, nan_fraction)
    index = []
    for n, s, b in zip(shape, steps, base_shape):
        if s > 0:
            index.append(slice(0, n * s, s) if n else slice(0, 0))
        else:
            start = b - 1
            stop = start - n * abs(s)
            index.append(slice(start, stop if stop >= 0 else None, s) if n else slice(0, 0))
    v = base[tuple(index)] if ndim else base  # base[()] would be a numpy scalar
    assert v.shape == tuple(shape), (v.shape, shape)
    if ndim > 1 and rng.random() < 0.4:
        v = v.transpose(rng.permutation(ndim))
    if ndim and rng.random() < 0.2:
        # A broadcast axis: stride 0.
        k = int(rng.integers(0, ndim))
        src = np.take(v, [0], axis=k) if v.shape[k] else v
        target = list(v.shape)
        target[k] = int(rng.integers(1, 4)) if v.shape[k] else 0
        v = np.broadcast_to(src, target) if v.shape[k] else v
    if ndim and rng.random() < 0.1:
        v = np.asfortranarray(v)
    return v


def random_axis(rng, ndim, tuple_ok=True):
    r = rng.random()
    if r < 0.3 or ndim == 0:
        return None
    if r < 0.6 or not tuple_ok:
        return int(rng.integers(-ndim, ndim))
    k = int(rng.integers(0, ndim + 1))
    return tuple(int(a) for a in rng.permutation(ndim)[:k])


def call(fn, *args, **kwargs):
    """(result or exception, the numpy-style warnings raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            try:
                result = fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - compared with numpy's
                result = e
    seen = {str(w.message).rstrip(".") for w in caught if issubclass(w.category, RuntimeWarning)}
    return result, {m for m in seen if m in NUMPY_WARNINGS}


def slices(x, axis):
    """The reduced slices of ``x`` as rows of a 2-D array (one row per output)."""
    axes = tuple(range(x.ndim)) if axis is None else np.lib.array_utils.normalize_axis_tuple(axis, x.ndim)
    kept = [k for k in range(x.ndim) if k not in axes]
    moved = np.transpose(x, kept + list(axes))
    outer = [x.shape[k] for k in kept]
    inner = int(np.prod([x.shape[k] for k in axes], dtype=np.int64))
    return moved.reshape([int(np.prod(outer, dtype=np.int64)), inner]), outer


class Checks:
    """Comparison helpers shared by the test classes."""

    def assertSameAsNumpy(self, got, want, what):
        got_r, got_w = got
        want_r, want_w = want
        if isinstance(want_r, Exception):
            self.assertIsInstance(got_r, type(want_r), f"{what}: numpy raised {want_r!r}, parfor gave {got_r!r}")
            return False
        if isinstance(got_r, Exception):
            raise AssertionError(f"{what}: parfor raised {got_r!r}, numpy gave {want_r!r}")
        self.assertEqual(got_w, want_w, f"{what}: warnings")
        self.assertEqual(type(got_r), type(want_r), f"{what}: result type")
        got_a, want_a = np.asarray(got_r), np.asarray(want_r)
        self.assertEqual(got_a.dtype, want_a.dtype, what)
        self.assertEqual(got_a.shape, want_a.shape, what)
        return True

    def assertExact(self, got, want, what):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=what, strict=True)

    def assertNanPlacement(self, got, want, what):
        np.testing.assert_array_equal(np.isnan(np.asarray(got)), np.isnan(np.asarray(want)), err_msg=what)

    def assertSumWithinBound(self, got, x, axis, keepdims, nan_skip, what):
        """Every output element within 2 ceil(log2 n) u sum|x| + half an ulp of the
        exact sum of its slice, u the unit roundoff of the input's float type."""
        rows, outer = slices(x.astype(np.float64), axis)
        got = np.asarray(got, dtype=np.float64).reshape(-1)
        u = 2.0 ** -(np.finfo(x.dtype).nmant + 1)
        for r, value in zip(rows, got):
            r = r[~np.isnan(r)] if nan_skip else r
            if np.isnan(r).any() or np.isinf(r).any():
                continue
            n = len(r)
            exact = math.fsum(r)
            bound = 2 * max(1, math.ceil(math.log2(max(n, 2)))) * u * math.fsum(abs(r)) + 0.5 * np.spacing(np.float32(value) if x.dtype == np.float32 else value)
            self.assertLessEqual(abs(value - exact), abs(bound), f"{what}: {value} vs exact {exact}")


class RandomViews(unittest.TestCase, Checks):
    def run_cases(self, functions, seed, nan_fraction=0.0, dtypes=DTYPES):
        rng = np.random.default_rng(seed + SEED)
        for case in range(CASES):
            dtype = dtypes[int(rng.integers(0, len(dtypes)))]
            x = random_view(rng, dtype, nan_fraction if dtype in FLOATS else 0.0)
            name = functions[int(rng.integers(0, len(functions)))]
            arg = name.startswith(("arg", "nanarg"))
            axis = random_axis(rng, x.ndim, tuple_ok=not arg)
            kwargs = {"axis": axis, "keepdims": bool(rng.random() < 0.5)}
            if name in ("var", "std", "nanvar", "nanstd"):
                kwargs["ddof"] = int(rng.integers(0, 3))
            what = f"case {case}: {name}({x.dtype}{x.shape} strides {x.strides}, {kwargs})"
            self.check_case(x, name, kwargs, what)

    def check_case(self, x, name, kwargs, what):
        p_fn, n_fn = getattr(parfor, name), getattr(np, name)
        arg = name.startswith(("arg", "nanarg"))
        axis = kwargs.get("axis")
        got, want = call(p_fn, x, **kwargs), call(n_fn, x, **kwargs)
        if not self.assertSameAsNumpy(got, want, what):
            return
        got, want = got[0], want[0]
        result_kind = np.asarray(want).dtype.kind
        if result_kind in "biu" or name in ("min", "max", "nanmin", "nanmax") or arg:
            self.assertExact(got, want, what)
        elif name in ("sum", "nansum", "prod"):
            self.assertNanPlacement(got, want, what)
            if name != "prod" and x.dtype.kind == "f":
                self.assertSumWithinBound(got, x, axis, kwargs["keepdims"], name == "nansum", what)
            else:
                # A float product may be computed in wider lanes than numpy's
                # (partial products then neither underflow nor overflow): either
                # numpy's answer or the float64 one rounded.
                with np.errstate(all="ignore"):
                    wide = np.asarray(np.prod(x.astype(np.float64), axis=axis, keepdims=kwargs["keepdims"])).astype(x.dtype)
                rtol = 1e-5 if x.dtype == np.float32 else 1e-12
                if not np.allclose(got, wide, rtol=rtol, atol=0, equal_nan=True):
                    np.testing.assert_allclose(got, want, rtol=rtol, err_msg=what)
        else:
            self.assertNanPlacement(got, want, what)
            rtol = 1e-3 if np.asarray(want).dtype == np.float32 else 1e-9
            # Absolute slack on the data's scale: a variance that is exactly 0 (a
            # broadcast slice) comes out as a few ulps of mean^2 in numpy's float32.
            finite = np.abs(x[np.isfinite(x)]) if x.dtype.kind == "f" else np.abs(x.astype(np.float64))
            scale = float(finite.max()) if finite.size else 1.0
            atol = rtol * (scale * scale if name in ("var", "nanvar") else scale)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)

    def test_every_dtype_function_axes_keepdims(self):
        # The full product on a fixed 3-D view (negative, strided and transposed axes,
        # NaNs in the floats): every axis tuple, both keepdims.
        rng = np.random.default_rng(10)
        functions = [
            "sum", "prod", "min", "max", "any", "all", "mean", "var", "std", "nansum", "nanmin",
            "nanmax", "nanmean", "nanvar", "nanstd", "argmin", "argmax", "nanargmin", "nanargmax",
        ]
        axes = [None, 0, 1, 2, -1, (), (0,), (0, 1), (0, 2), (1, 2), (2, 0, 1)]
        for dtype in DTYPES:
            base = random_values(rng, dtype, (5, 8, 3), 0.15 if dtype in FLOATS else 0.0)
            x = base[::-2, 1::3, :].transpose(2, 0, 1)  # shape (3, 3, 3), mixed strides
            for name in functions:
                arg = name.startswith(("arg", "nanarg"))
                for axis in axes:
                    if arg and not (axis is None or isinstance(axis, int)):
                        continue
                    for keepdims in (False, True):
                        kwargs = {"axis": axis, "keepdims": keepdims}
                        self.check_case(x, name, kwargs, f"{name}({x.dtype}, {kwargs})")
        for axis in axes:
            x = random_values(rng, np.int16, (3, 4, 2))[:, ::-1]
            for keepdims in (False, True):
                want = call(np.count_nonzero, x, axis=axis, keepdims=keepdims)
                got = call(parfor.count_nonzero, x, axis=axis, keepdims=keepdims)
                what = f"count_nonzero(axis={axis}, keepdims={keepdims})"
                if self.assertSameAsNumpy(got, want, what):
                    self.assertExact(got[0], want[0], what)

    def test_sum_prod_any_all_count(self):
        self.run_cases(["sum", "prod", "any", "all"], 1)

    def test_min_max_and_arg(self):
        self.run_cases(["min", "max", "argmin", "argmax"], 2)

    def test_moments(self):
        self.run_cases(["mean", "var", "std"], 3)

    def test_nan_functions(self):
        self.run_cases(
            ["nansum", "nanmin", "nanmax", "nanmean", "nanvar", "nanstd", "nanargmin", "nanargmax"],
            4,
            nan_fraction=0.3,
        )

    def test_count_nonzero(self):
        rng = np.random.default_rng(5 + SEED)
        for case in range(CASES // 4):
            x = random_view(rng, DTYPES[int(rng.integers(0, len(DTYPES)))], 0.2)
            axis = random_axis(rng, x.ndim)
            keepdims = bool(rng.random() < 0.5)
            what = f"case {case}: count_nonzero({x.dtype}{x.shape}, axis={axis}, keepdims={keepdims})"
            got = call(parfor.count_nonzero, x, axis=axis, keepdims=keepdims)
            want = call(np.count_nonzero, x, axis=axis, keepdims=keepdims)
            if self.assertSameAsNumpy(got, want, what):
                self.assertExact(got[0], want[0], what)

    def test_dtype_argument(self):
        # Every dtype= numpy accepts for sum/prod/nansum, on every input type.
        targets = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64, np.complex128, np.float16]
        rng = np.random.default_rng(6 + SEED)
        for case in range(CASES // 2):
            x = random_view(rng, DTYPES[int(rng.integers(0, len(DTYPES)))])
            name = ["sum", "prod", "nansum"][int(rng.integers(0, 3))]
            target = targets[int(rng.integers(0, len(targets)))]
            axis = random_axis(rng, x.ndim)
            what = f"case {case}: {name}({x.dtype}{x.shape}, dtype={np.dtype(target)}, axis={axis})"
            got = call(getattr(parfor, name), x, axis=axis, dtype=target)
            want = call(getattr(np, name), x, axis=axis, dtype=target)
            if not self.assertSameAsNumpy(got, want, what):
                continue
            if np.dtype(target).kind in "biu":
                self.assertExact(got[0], want[0], what)
            else:
                tol = 1e-2 if target == np.float16 else (1e-5 if target == np.float32 else 1e-9)
                if target in (np.float16, np.complex128) and not np.isfinite(np.asarray(want[0])).all():
                    # numpy overflowed float16 partial sums, or a complex product's
                    # inf * inf became nan+nanj; parfor computes in float64 and casts.
                    continue
                with np.errstate(all="ignore"):
                    np.testing.assert_allclose(
                        np.asarray(got[0]).astype(np.complex128), np.asarray(want[0]).astype(np.complex128),
                        rtol=tol, atol=tol, equal_nan=True, err_msg=what,
                    )

    def test_out_argument(self):
        rng = np.random.default_rng(7 + SEED)
        for case in range(CASES // 4):
            x = random_view(rng, DTYPES[int(rng.integers(0, len(DTYPES)))])
            if x.ndim == 0:
                continue
            name = ["sum", "prod", "min", "max", "any", "all", "mean", "nansum"][int(rng.integers(0, 8))]
            axis = random_axis(rng, x.ndim)
            keepdims = bool(rng.random() < 0.5)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ref = getattr(np, name)(x, axis=axis, keepdims=keepdims)
                except ValueError:
                    continue
                ref = np.asarray(ref)
                out_dtype = [ref.dtype, np.float64, np.int64][int(rng.integers(0, 3))]
                if ref.dtype.kind == "f" and np.dtype(out_dtype).kind in "iu":
                    out_dtype = ref.dtype
                out_p = np.full(ref.shape, 7, dtype=out_dtype)
                out_n = out_p.copy()
                what = f"case {case}: {name}({x.dtype}{x.shape}, axis={axis}, keepdims={keepdims}, out={out_p.dtype})"
                if out_p.ndim == 0:
                    continue  # numpy takes a 0-d out only for full reductions; covered below
                r_p = getattr(parfor, name)(x, axis=axis, keepdims=keepdims, out=out_p)
                # numpy's result cast into out (numpy 2.1's own out= path with a
                # cast and negative strides returned a wrong minimum in this test).
                np.copyto(out_n, ref, casting="unsafe")
            self.assertIs(r_p, out_p, what)
            if out_p.dtype.kind == "f":
                np.testing.assert_allclose(out_p, out_n, rtol=1e-5 if x.dtype == np.float32 else 1e-10, equal_nan=True, err_msg=what)
            else:
                self.assertExact(out_p, out_n, what)


class IssueTable(unittest.TestCase):
    """The first table of issue 12: each call now gives numpy's answer."""

    def test_uint8_sum_accumulates_in_uint64(self):
        r = parfor.sum(np.full(1000, 200, np.uint8))
        self.assertEqual(r, 200000)
        self.assertIs(type(r), np.uint64)

    def test_int32_sum_accumulates_in_int64(self):
        r = parfor.sum(np.arange(100000, dtype=np.int32))
        self.assertEqual(r, 4999950000)
        self.assertIs(type(r), np.int64)

    def test_int16_prod_accumulates_in_int64(self):
        r = parfor.prod(np.full(20, 3, np.int16))
        self.assertEqual(r, 3486784401)
        self.assertIs(type(r), np.int64)

    def test_dot_of_matrices_points_to_numpy(self):
        sq = np.array([[1.0, 2.0], [3.0, 0.0]])
        with self.assertRaises(ValueError) as cm:
            parfor.dot(sq, sq)
        self.assertIn("numpy.dot", str(cm.exception))
        self.assertIn("1-D", str(cm.exception))
        # vdot flattens, as numpy.vdot does.
        self.assertEqual(parfor.vdot(sq, sq), np.vdot(sq, sq))
        self.assertIs(type(parfor.vdot(sq, sq)), np.float64)
        self.assertEqual(parfor.vdot(sq.T, sq), np.vdot(sq.T, sq))
        self.assertEqual(parfor.dot(np.arange(3.0), np.arange(3.0)), 5.0)

    def test_masked_array_is_refused(self):
        m = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
        for fn in (parfor.sum, parfor.mean, parfor.max, parfor.argmin, parfor.nansum, parfor.count_nonzero):
            with self.subTest(fn=fn.__name__):
                with self.assertRaises(TypeError) as cm:
                    fn(m)
                self.assertIn("MaskedArray", str(cm.exception))
                self.assertIn("mask", str(cm.exception))

    @unittest.skipIf(
        _nd_model.ACTIVE,
        "the full float32 sum runs through the 1-D parfor_reduce, which accumulates in "
        "float32 lanes until issue 12's C side (float64 lanes) is in the loaded library",
    )
    def test_float32_sum_within_the_bound(self):
        x = np.full(10**7, 0.1, np.float32)
        r = parfor.sum(x)
        self.assertIs(type(r), np.float32)
        exact = 10**7 * float(np.float32(0.1))  # 1000000.0149011612
        u = 2.0**-24
        bound = 2 * math.ceil(math.log2(10**7)) * u * exact + 0.5 * float(np.spacing(r))
        self.assertLessEqual(abs(float(r) - exact), bound)

    def test_axis_keepdims_dtype_out(self):
        m = np.arange(12, dtype=np.int32).reshape(3, 4)
        np.testing.assert_array_equal(parfor.sum(m, axis=0), np.sum(m, axis=0), strict=True)
        np.testing.assert_array_equal(parfor.sum(m, axis=1, keepdims=True), np.sum(m, axis=1, keepdims=True), strict=True)
        np.testing.assert_array_equal(parfor.sum(m, axis=(0, 1), dtype=np.int8), np.sum(m, axis=(0, 1), dtype=np.int8), strict=True)
        out = np.empty(4, np.float64)
        self.assertIs(parfor.sum(m, axis=0, out=out), out)
        np.testing.assert_array_equal(out, np.sum(m, axis=0).astype(np.float64))

    def test_views_are_read_in_place(self):
        x = np.arange(40.0)
        m = x.reshape(5, 8)
        for view in (x[::2], m[:, 1], m.T, x[::-1], np.asfortranarray(m)):
            with self.subTest(strides=view.strides):
                self.assertEqual(parfor.sum(view), np.sum(view))
                np.testing.assert_array_equal(parfor.sum(view, axis=0), np.sum(view, axis=0), strict=True)

    def test_bool_logical_moments_and_nan_functions(self):
        b = np.array([True, False, True])
        self.assertEqual(parfor.sum(b), 2)
        self.assertIs(type(parfor.sum(b)), np.int64)
        self.assertIs(parfor.any(b), np.True_)
        self.assertIs(parfor.all(b), np.False_)
        x = np.array([1.0, np.nan, 3.0, -2.0])
        y = np.array([1.0, 2.0, 4.0, 8.0])
        for name in ("mean", "var", "std"):
            self.assertAlmostEqual(getattr(parfor, name)(y), getattr(np, name)(y))
        for name in ("nansum", "nanmin", "nanmax", "nanmean", "nanargmin", "nanargmax", "nanvar", "nanstd"):
            with self.subTest(name=name):
                got, want = getattr(parfor, name)(x), getattr(np, name)(x)
                self.assertAlmostEqual(got, want)
                self.assertIs(type(got), type(want))


class NumpyRules(unittest.TestCase):
    """Warnings, errors, input types and scalars as numpy's."""

    def test_all_nan_slices(self):
        x = np.array([[np.nan, 1.0], [np.nan, np.nan]])
        with self.assertWarnsRegex(RuntimeWarning, "All-NaN slice encountered"):
            r = parfor.nanmin(x, axis=1)
        np.testing.assert_array_equal(r, [1.0, np.nan])
        with self.assertWarnsRegex(RuntimeWarning, "Mean of empty slice"):
            self.assertTrue(np.isnan(parfor.nanmean(np.array([np.nan]))))
        with self.assertRaisesRegex(ValueError, "All-NaN slice encountered"):
            parfor.nanargmin(np.array([np.nan, np.nan]))
        with self.assertRaisesRegex(ValueError, "All-NaN slice encountered"):
            parfor.nanargmax(x, axis=1)
        self.assertEqual(parfor.nansum(np.array([np.nan])), 0.0)

    def test_empty_inputs(self):
        with self.assertRaisesRegex(ValueError, "zero-size array to reduction operation minimum"):
            parfor.min(np.array([]))
        with self.assertRaisesRegex(ValueError, "zero-size array"):
            parfor.max(np.zeros((2, 0)), axis=1)
        np.testing.assert_array_equal(parfor.min(np.zeros((0, 2)), axis=1), np.zeros(0))
        with self.assertRaisesRegex(ValueError, "attempt to get argmin of an empty sequence"):
            parfor.argmin(np.array([]))
        with self.assertWarnsRegex(RuntimeWarning, "Mean of empty slice"):
            self.assertTrue(np.isnan(parfor.mean(np.array([]))))
        with self.assertWarnsRegex(RuntimeWarning, "Degrees of freedom"):
            self.assertTrue(np.isnan(parfor.var(np.array([1.0]), ddof=1)))
        self.assertEqual(parfor.sum(np.zeros((0, 3)), axis=0).tolist(), [0.0, 0.0, 0.0])

    def test_scalars_and_zero_d(self):
        self.assertIs(type(parfor.count_nonzero(np.array([1, 0, 2]))), int)
        self.assertEqual(parfor.count_nonzero(np.array([1, 0, 2])), 2)
        self.assertIs(type(parfor.mean(np.arange(3, dtype=np.float32))), np.float32)
        self.assertIs(type(parfor.mean(np.arange(3, dtype=np.int8))), np.float64)
        self.assertEqual(parfor.sum(np.array(2.5)), 2.5)
        self.assertIs(type(parfor.sum(np.array(3, np.int8))), np.int64)
        self.assertEqual(parfor.argmax(np.array(7)), 0)
        for fn in (parfor.argmin, parfor.nanargmax):
            self.assertEqual(fn(np.array(7.0), axis=0), 0)
            self.assertEqual(fn(np.array(7.0), axis=-1, keepdims=True), 0)
            with self.assertRaises(np.exceptions.AxisError):
                fn(np.array(7.0), axis=1)
        with self.assertRaises(np.exceptions.AxisError):
            parfor.sum(np.array(1.0), axis=0)
        with self.assertRaises(np.exceptions.AxisError):
            parfor.sum(np.zeros((2, 2)), axis=2)
        with self.assertRaises(ValueError):
            parfor.sum(np.zeros((2, 2)), axis=(0, 0))

    def test_unsupported_types(self):
        for dtype in (np.float16, np.complex64, np.complex128):
            with self.subTest(dtype=dtype):
                with self.assertRaises(TypeError) as cm:
                    parfor.sum(np.zeros(3, dtype))
                self.assertIn(np.dtype(dtype).name, str(cm.exception))
                self.assertIn("float32, float64", str(cm.exception))

    def test_misaligned_views(self):
        raw = np.zeros(8 * 10 + 1, np.uint8)
        view = raw[1:].view(np.float64)
        self.assertFalse(view.flags.aligned)
        for fn in (parfor.sum, parfor.min, parfor.mean, parfor.argmax, parfor.nansum):
            with self.subTest(fn=fn.__name__):
                with self.assertRaises(parfor.MisalignedError) as cm:
                    fn(view)
                self.assertEqual(cm.exception.status, "PARFOR_ERR_MISALIGNED")
                with self.assertRaises(parfor.MisalignedError):
                    fn(view.reshape(2, 5), axis=1)

    def test_out_errors_leave_out_untouched(self):
        m = np.ones((3, 2))
        for out in (np.full(3, 7.0), np.full((1, 2), 7.0)):
            with self.subTest(shape=out.shape):
                with self.assertRaises(ValueError):
                    parfor.sum(m, axis=0, out=out)
                self.assertTrue((out == 7.0).all())
        ro = np.zeros(2)
        ro.flags.writeable = False
        with self.assertRaisesRegex(ValueError, "read-only"):
            parfor.sum(m, axis=0, out=ro)

    def test_num_threads_keyword(self):
        x = np.random.default_rng(8).standard_normal((300, 200))
        ref = parfor.sum(x, axis=0)
        for n in (1, 2, 3, 4):
            np.testing.assert_array_equal(parfor.sum(x, axis=0, num_threads=n), ref)
            self.assertEqual(parfor.sum(x, num_threads=n), parfor.sum(x))
        with self.assertRaises(parfor.InvalidArgumentError):
            parfor.sum(x, num_threads=parfor.MAX_THREADS + 1)
        with self.assertRaises(ValueError):
            parfor.mean(x, num_threads=-1)
        # Every function takes it, with the same result for every team size.
        y = x.copy()
        y[::7, ::5] = np.nan
        for name in parfor._reductions.__all__:
            for axis in (None, 1):
                with self.subTest(name=name, axis=axis):
                    fn = getattr(parfor, name)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ref = np.asarray(fn(y, axis=axis))
                        for n in (1, 2, 3):
                            np.testing.assert_array_equal(np.asarray(fn(y, axis=axis, num_threads=n)), ref)
                    with self.assertRaises(parfor.InvalidArgumentError):
                        fn(y, axis=axis, num_threads=parfor.MAX_THREADS + 1)

    @unittest.skipIf(_nd_model.ACTIVE, "a property of the library's fixed partition, not of the numpy model")
    def test_layouts_give_the_same_bits(self):
        rng = np.random.default_rng(9)
        m = rng.standard_normal((64, 48))
        f = np.asfortranarray(m)
        rev = m[::-1, ::-1].copy()[::-1, ::-1]
        padded = np.zeros((64, 96))
        padded[:, ::2] = m
        strided = padded[:, ::2]
        for axis in (None, 0, 1):
            ref = np.asarray(parfor.sum(m, axis=axis))
            for other in (f, rev, strided):
                np.testing.assert_array_equal(np.asarray(parfor.sum(other, axis=axis)), ref)


class HotPaths(unittest.TestCase, Checks):
    """A full reduction of a C-contiguous array takes the 1-D entry points with
    preallocated result slots (the per-call cost of small calls); the same values
    in a strided view take the N-d path. Both must give the same result: bits,
    dtype, type and warnings, and numpy's type and warnings."""

    FUNCTIONS = (
        "sum", "prod", "nansum", "min", "max", "nanmin", "nanmax", "any", "all",
        "mean", "var", "std", "nanmean", "nanvar", "nanstd",
        "argmin", "argmax", "nanargmin", "nanargmax", "count_nonzero",
    )

    @staticmethod
    def strided_copy(x):
        padded = np.zeros(2 * x.size + 1, dtype=x.dtype)
        view = padded[1::2]
        view[:] = x
        assert not view.flags.c_contiguous or x.size < 2
        return view

    def test_contiguous_and_strided_agree(self):
        rng = np.random.default_rng(21)
        # Lengths across the kernels' block and parallel thresholds.
        lengths = (0, 1, 2, 3, 7, 8, 33, 1000, 4099, 70001)
        for dtype in DTYPES:
            for n in lengths:
                for nan_fraction in ((0.0, 0.2, 1.0) if dtype in FLOATS else (0.0,)):
                    x = random_values(rng, dtype, (n,), nan_fraction)
                    if dtype in FLOATS and nan_fraction == 1.0:
                        x[:] = np.nan
                    y = self.strided_copy(x)
                    for name in self.FUNCTIONS:
                        fn = getattr(parfor, name)
                        extra = [{}]
                        if name in ("var", "std", "nanvar", "nanstd"):
                            extra = [{}, {"ddof": 1}, {"ddof": 3}]
                        for kw in extra:
                            what = f"{name}({np.dtype(dtype)}[{n}], {kw}, nan {nan_fraction})"
                            hot, slow, ref = call(fn, x, **kw), call(fn, y, **kw), call(getattr(np, name), x, **kw)
                            if isinstance(slow[0], Exception):
                                self.assertIsInstance(hot[0], type(slow[0]), what)
                                self.assertEqual(str(hot[0]), str(slow[0]), what)
                                continue
                            self.assertEqual(hot[1], slow[1], f"{what}: warnings")
                            self.assertEqual(type(hot[0]), type(slow[0]), what)
                            self.assertExact(hot[0], slow[0], what)
                            if name not in ("var", "std", "nanvar", "nanstd") or n < 2:
                                self.assertSameAsNumpy(hot, ref, what)

    def test_reshaped_contiguous_arrays(self):
        """An N-d C-contiguous array reduced in full is read as 1-D: same bits as
        the same values in Fortran order (the N-d path)."""
        rng = np.random.default_rng(22)
        for shape in ((3, 5), (2, 3, 4), (7, 1, 9)):
            x = random_values(rng, np.float64, shape)
            f = np.asfortranarray(x)
            self.assertFalse(f.flags.c_contiguous)
            for name in ("sum", "mean", "var", "std", "min", "argmax", "any"):
                fn = getattr(parfor, name)
                self.assertExact(fn(x), fn(f), f"{name}{shape}")

    def test_threads_do_not_share_result_slots(self):
        """Calls from several Python threads at once each read their own result."""
        import threading

        arrays = [np.full(64, float(k)) for k in range(8)]
        errors = []

        def work(k):
            x = arrays[k]
            for _ in range(2000):
                if parfor.sum(x) != 64.0 * k or parfor.mean(x) != float(k) or parfor.argmax(x) != 0:
                    errors.append(k)
                    return

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()


class StridedDot(unittest.TestCase):
    """parfor.dot of strided 1-D views gives numpy.dot's value (issue 12: it raised
    "not C-contiguous")."""

    def test_strided_views_match_numpy(self):
        rng = np.random.default_rng(7)
        m = rng.integers(-50, 50, size=(300, 7)).astype(np.float64)
        x = rng.integers(-50, 50, size=2000).astype(np.float64)
        cases = [
            (x[::2], x[1::2]),
            (x[::-1], x),
            (m[:, 3], m[:, 5]),
            (np.asfortranarray(m)[4], m[4]),
        ]
        for a, b in cases:
            with self.subTest(strides=(a.strides, b.strides)):
                # Small integers: every order of summation is exact, so equal bits.
                self.assertEqual(parfor.dot(a, b), np.dot(a, b))
                self.assertEqual(parfor.dot(a, b).dtype, np.dot(a, b).dtype)
        i = np.arange(999, dtype=np.int64)
        self.assertEqual(parfor.dot(i[::3], i[1::3]), np.dot(i[::3], i[1::3]))
