"""Bitwise-portable elementary functions for algorithm v1 (docs/determinism.md, section 2).

Only IEEE-754 binary64 operations that are correctly rounded on every machine are used:
``+ - * /``, ``sqrt``, comparisons, ``frexp``/``ldexp`` and integer bit manipulation.
Library ``log``/``exp``/``erf`` are not: numpy dispatches float64 ``log``/``exp`` to SVML on
AVX-512, and libms differ in the last bit. So this module carries its own:

* ``log``: fdlibm 5.3 ``__ieee754_log`` (e_log.c), scalar (via ``frexp``) and array (bits).
* ``exp``, ``erfc``: fdlibm 5.3 ``__ieee754_exp`` (e_exp.c) and ``erfc`` (s_erf.c), scalars.
* ``phi(z) = 0.5 * erfc(-z / sqrt(2))``: the standard normal CDF, scalar.
* ``ndtri``: Wichura's AS241 ``PPND16`` normal quantile, scalar and array.

Coefficients are copied from the published sources (fdlibm via JuliaMath/openlibm
src/e_log.c, src/e_exp.c, src/s_erf.c; AS241 as printed in Applied Statistics 37(3) and
reproduced in R's src/nmath/qnorm.c and J. Burkardt's asa241), and evaluated in the same
operation order. Scalars are Python floats (binary64, round-to-nearest-even); arrays are
whole-array numpy passes, the reference that ``weightinit.core.rng.kernels`` must match bit for bit.
"""

from __future__ import annotations

import math
import struct

import numpy as np

__all__ = ["erfc", "exp", "log", "log_array", "ndtri", "ndtri_array", "phi"]

# --- fdlibm e_log.c ---------------------------------------------------------------------
LN2_HI = 6.93147180369123816490e-01  # 3fe62e42 fee00000
LN2_LO = 1.90821492927058770002e-10  # 3dea39ef 35793c76
LG1 = 6.666666666666735130e-01  # 3FE55555 55555593
LG2 = 3.999999999940941908e-01  # 3FD99999 9997FA04
LG3 = 2.857142874366239149e-01  # 3FD24924 94229359
LG4 = 2.222219843214978396e-01  # 3FCC71C5 1D8E78AF
LG5 = 1.818357216161805012e-01  # 3FC74664 96CB03DE
LG6 = 1.531383769920937332e-01  # 3FC39A09 D078C69F
LG7 = 1.479819860511658591e-01  # 3FC2F112 DF3E5244
LOG_SMALL_R = 0.33333333333333333

# --- AS241 PPND16 (Wichura 1988), coefficients lowest degree first ----------------------
# Source: Applied Statistics 37(3) 477-484; cross-checked digit for digit against R's
# src/nmath/qnorm.c ("use AS 241 ... ppnd16_") and Burkardt's normal_01_cdf_inv (asa241).
SPLIT1 = 0.425
SPLIT2 = 5.0
CONST1 = 0.180625
CONST2 = 1.6
AS241_A = (
    3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
    1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
    3.3430575583588128105e4, 2.5090809287301226727e3,
)  # fmt: skip
AS241_B = (
    1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
    2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
    5.2264952788528545610e3,
)  # fmt: skip
AS241_C = (
    1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
    3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
    2.27238449892691845833e-2, 7.74545014278341407640e-4,
)  # fmt: skip
AS241_D = (
    1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
    1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)  # fmt: skip
AS241_E = (
    6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
    2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
    2.71155556874348757815e-5, 2.01033439929228813265e-7,
)  # fmt: skip
AS241_F = (
    1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
    7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)  # fmt: skip

SQRT2 = math.sqrt(2.0)


# --- bit access for scalars ---------------------------------------------------------------
def _bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _from_bits(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def _with_low_word_zero(x: float) -> float:
    """fdlibm ``SET_LOW_WORD(x, 0)``: ``x`` truncated to its high 32 bits."""
    return _from_bits(_bits(x) & 0xFFFFFFFF00000000)


# --- log ------------------------------------------------------------------------------------
def _log_tail(f: float, k: int, m20: int) -> float:
    """fdlibm log of ``(1 + f) * 2**k`` after reduction; ``m20``: top 20 mantissa bits."""
    dk = float(k)
    if ((2 + m20) & 0x000FFFFF) < 3:  # |f| < 2**-20
        if f == 0.0:
            return 0.0 if k == 0 else dk * LN2_HI + dk * LN2_LO
        r = f * f * (0.5 - LOG_SMALL_R * f)
        return f - r if k == 0 else dk * LN2_HI - ((r - dk * LN2_LO) - f)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LG2 + w * (LG4 + w * LG6))
    t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)))
    r = t2 + t1
    if 0x6147A <= m20 <= 0x6B851:
        hfsq = 0.5 * f * f
        if k == 0:
            return f - (hfsq - s * (hfsq + r))
        return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)
    if k == 0:
        return f - s * (f - r)
    return dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)


def log(x: float) -> float:
    """Natural log of a float: fdlibm ``__ieee754_log``, argument reduction via ``frexp``."""
    x = float(x)
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return -math.inf
    if x == math.inf:
        return math.inf
    m, e = math.frexp(x)  # x = m * 2**e, m in [0.5, 1); exact, subnormals included
    m2 = 2.0 * m  # the 1.f of x
    m20 = int((m2 - 1.0) * 1048576.0)  # top 20 fraction bits (exact)
    k = e - 1
    if m20 >= 0x6A09C:  # fdlibm: (hx + 0x95f64) & 0x100000, i.e. 1.f >= ~sqrt(2)
        return _log_tail(m - 1.0, k + 1, m20)
    return _log_tail(m2 - 1.0, k, m20)


def _log_parts(f: np.ndarray, k: np.ndarray, m20: np.ndarray) -> np.ndarray:
    """Array version of ``_log_tail``: every branch computed, then selected."""
    dk = k.astype(np.float64)
    k0 = k == 0
    small = ((2 + m20) & 0x000FFFFF) < 3
    r_small = f * f * (0.5 - LOG_SMALL_R * f)
    v_small = np.where(
        f == 0.0,
        np.where(k0, 0.0, dk * LN2_HI + dk * LN2_LO),
        np.where(k0, f - r_small, dk * LN2_HI - ((r_small - dk * LN2_LO) - f)),
    )
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LG2 + w * (LG4 + w * LG6))
    t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)))
    r = t2 + t1
    hfsq = 0.5 * f * f
    v_mid = np.where(
        k0,
        f - (hfsq - s * (hfsq + r)),
        dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f),
    )
    v_out = np.where(k0, f - s * (f - r), dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f))
    mid = (m20 >= 0x6147A) & (m20 <= 0x6B851)
    return np.where(small, v_small, np.where(mid, v_mid, v_out))


def log_array(x: np.ndarray) -> np.ndarray:
    """Elementwise fdlibm log of a float64 array (whole-array numpy, reduction by bits)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    shape = x.shape
    x = x.reshape(-1)
    positive = x > 0.0  # False for NaN and negatives
    finite_pos = positive & (x < math.inf)
    sub = finite_pos & (x < 2.2250738585072014e-308)
    xs = np.where(finite_pos, x, 1.0)
    xs[sub] *= 18014398509481984.0  # 2**54: subnormals scaled to normal, exactly
    bits = xs.view(np.uint64)
    hx = (bits >> np.uint64(32)).astype(np.int64)
    m20 = hx & 0x000FFFFF
    i = (m20 + 0x95F64) & 0x00100000
    k = (hx >> 20) - 1023 + (i >> 20) - np.where(sub, 54, 0)
    hi_new = (m20 | (i ^ 0x3FF00000)).astype(np.uint64)
    xn = ((hi_new << np.uint64(32)) | (bits & np.uint64(0xFFFFFFFF))).view(np.float64)
    out = _log_parts(xn - 1.0, k, m20)
    out = np.where(x == 0.0, -math.inf, out)
    out = np.where(x == math.inf, math.inf, out)
    out = np.where(positive | (x == 0.0), out, math.nan)
    return out.reshape(shape)


# --- exp (fdlibm e_exp.c) ---------------------------------------------------------------
EXP_O_THRESHOLD = 7.09782712893383973096e02  # 0x40862E42 FEFA39EF
EXP_U_THRESHOLD = -7.45133219101941108420e02  # 0xc0874910 D52D3051
INVLN2 = 1.44269504088896338700e00  # 0x3ff71547 652b82fe
TWOM1000 = 9.33263618503218878990e-302  # 2**-1000
EXP_P1 = 1.66666666666666019037e-01  # 0x3FC55555 5555553E
EXP_P2 = -2.77777777770155933842e-03  # 0xBF66C16C 16BEBD93
EXP_P3 = 6.61375632143793436117e-05  # 0x3F11566A AF25DE2C
EXP_P4 = -1.65339022054652515390e-06  # 0xBEBBBD41 C5D26BF1
EXP_P5 = 4.13813679705723846039e-08  # 0x3E663769 72BEA4D0


def exp(x: float) -> float:
    """``e**x`` for a float: fdlibm ``__ieee754_exp`` (error < 1 ulp)."""
    x = float(x)
    bits = _bits(x)
    xsb = bits >> 63
    hx = (bits >> 32) & 0x7FFFFFFF
    if hx >= 0x40862E42:  # |x| >= 709.78..., or not finite
        if hx >= 0x7FF00000:
            if x != x:
                return x + x
            return x if xsb == 0 else 0.0
        if x > EXP_O_THRESHOLD:
            return math.inf
        if x < EXP_U_THRESHOLD:
            return 0.0
    k = 0
    hi = lo = 0.0
    if hx > 0x3FD62E42:  # |x| > 0.5 ln2
        if hx < 0x3FF0A2B2:  # and |x| < 1.5 ln2
            hi = x - LN2_HI if xsb == 0 else x + LN2_HI
            lo = LN2_LO if xsb == 0 else -LN2_LO
            k = 1 - 2 * xsb
        else:
            k = int(INVLN2 * x + (0.5 if xsb == 0 else -0.5))  # C truncation toward 0
            t = float(k)
            hi = x - t * LN2_HI  # t*ln2_hi is exact here
            lo = t * LN2_LO
        x = hi - lo
    elif hx < 0x3E300000:  # |x| < 2**-28
        return 1.0 + x
    t = x * x
    c = x - t * (EXP_P1 + t * (EXP_P2 + t * (EXP_P3 + t * (EXP_P4 + t * EXP_P5))))
    if k == 0:
        return 1.0 - ((x * c) / (c - 2.0) - x)
    y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi)
    if k >= -1021:
        return math.ldexp(y, k)  # fdlibm adds k to the exponent field: exact
    return math.ldexp(y, k + 1000) * TWOM1000


# --- erfc (fdlibm s_erf.c) --------------------------------------------------------------
ERX = 8.45062911510467529297e-01  # 0x3FEB0AC1 60000000
ERF_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01,
          -2.84817495755985104766e-02, -5.77027029648944159157e-03,
          -2.37630166566501626084e-05)  # fmt: skip
ERF_QQ = (3.97917223959155352819e-01, 6.50222499887672944485e-02,
          5.08130628187576562776e-03, 1.32494738004321644526e-04,
          -3.96022827877536812320e-06)  # fmt: skip
ERF_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01,
          -3.72207876035701323847e-01, 3.18346619901161753674e-01,
          -1.10894694282396677476e-01, 3.54783043256182359371e-02,
          -2.16637559486879084300e-03)  # fmt: skip
ERF_QA = (1.06420880400844228286e-01, 5.40397917702171048937e-01,
          7.18286544141962662868e-02, 1.26171219808761642112e-01,
          1.36370839120290507362e-02, 1.19844998467991074170e-02)  # fmt: skip
ERF_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01,
          -1.05586262253232909814e01, -6.23753324503260060396e01,
          -1.62396669462573470355e02, -1.84605092906711035994e02,
          -8.12874355063065934246e01, -9.81432934416914548592e00)  # fmt: skip
ERF_SA = (1.96512716674392571292e01, 1.37657754143519042600e02,
          4.34565877475229228821e02, 6.45387271733267880336e02,
          4.29008140027567833386e02, 1.08635005541779435134e02,
          6.57024977031928170135e00, -6.04244152148580987438e-02)  # fmt: skip
ERF_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01,
          -1.77579549177547519889e01, -1.60636384855821916062e02,
          -6.37566443368389627722e02, -1.02509513161107724954e03,
          -4.83519191608651397019e02)  # fmt: skip
ERF_SB = (3.03380607434824582924e01, 3.25792512996573918826e02,
          1.53672958608443695994e03, 3.19985821950859553908e03,
          2.55305040643316442583e03, 4.74528541206955367215e02,
          -2.24409524465858183362e01)  # fmt: skip


def _series(c0: float, coeffs: tuple[float, ...], s: float) -> float:
    """fdlibm's nested form ``c0 + s*(c1 + s*(c2 + ... + s*cn))``."""
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = c + s * acc
    return c0 + s * acc


def erfc(x: float) -> float:
    """Complementary error function: fdlibm 5.3 ``erfc`` (s_erf.c), with fdlibm ``exp``."""
    x = float(x)
    bits = _bits(x)
    negative = bits >> 63 == 1
    ix = (bits >> 32) & 0x7FFFFFFF
    if ix >= 0x7FF00000:  # NaN, +-inf
        return x + x if x != x else (2.0 if negative else 0.0)
    if ix < 0x3FEB0000:  # |x| < 0.84375
        if ix < 0x3C700000:  # |x| < 2**-56
            return 1.0 - x
        z = x * x
        r = ERF_PP[0] + z * (ERF_PP[1] + z * (ERF_PP[2] + z * (ERF_PP[3] + z * ERF_PP[4])))
        s = _series(1.0, ERF_QQ, z)
        y = r / s
        if negative or ix < 0x3FD00000:  # x < 1/4
            return 1.0 - (x + x * y)
        r = x * y
        r += x - 0.5
        return 0.5 - r
    if ix < 0x3FF40000:  # 0.84375 <= |x| < 1.25
        s = abs(x) - 1.0
        p = _series(ERF_PA[0], ERF_PA[1:], s)
        q = _series(1.0, ERF_QA, s)
        return (1.0 - ERX) - p / q if not negative else 1.0 + (ERX + p / q)
    if ix >= 0x403C0000:  # |x| >= 28
        return 2.0 if negative else 0.0
    ax = abs(x)
    s = 1.0 / (ax * ax)
    if ix < 0x4006DB6D:  # |x| < 1/0.35
        big_r = _series(ERF_RA[0], ERF_RA[1:], s)
        big_s = _series(1.0, ERF_SA, s)
    else:
        if negative and ix >= 0x40180000:  # x <= -6
            return 2.0
        big_r = _series(ERF_RB[0], ERF_RB[1:], s)
        big_s = _series(1.0, ERF_SB, s)
    z = _with_low_word_zero(ax)
    r = exp(-z * z - 0.5625) * exp((z - ax) * (z + ax) + big_r / big_s)
    return 2.0 - r / ax if negative else r / ax


def phi(z: float) -> float:
    """Standard normal CDF ``0.5 * erfc(-z / sqrt(2))``, accurate in both tails."""
    return 0.5 * erfc(-float(z) / SQRT2)


# --- ndtri (AS241 PPND16) ---------------------------------------------------------------
def _horner(coeffs: tuple[float, ...], r: float) -> float:
    """``(((c7*r + c6)*r + c5)*r ... + c0)`` -- the published PPND16 order."""
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = acc * r + c
    return acc


def ndtri(p: float) -> float:
    """Standard normal quantile of a float: AS241 ``PPND16`` with the portable ``log``."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        return math.nan
    if p == 0.0 or p == 1.0:
        return -math.inf if p == 0.0 else math.inf
    q = p - 0.5
    if abs(q) <= SPLIT1:
        r = CONST1 - q * q
        return q * _horner(AS241_A, r) / _horner(AS241_B, r)
    r = math.sqrt(-log(p if q < 0.0 else 1.0 - p))
    if r <= SPLIT2:
        r -= CONST2
        value = _horner(AS241_C, r) / _horner(AS241_D, r)
    else:
        r -= SPLIT2
        value = _horner(AS241_E, r) / _horner(AS241_F, r)
    return -value if q < 0.0 else value


def _horner_array(coeffs: tuple[float, ...], r: np.ndarray) -> np.ndarray:
    acc = np.full_like(r, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * r + c
    return acc


def ndtri_array(p: np.ndarray) -> np.ndarray:
    """Elementwise AS241 quantile of a float64 array: central rational, then the tails."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    r = CONST1 - q * q
    out = q * _horner_array(AS241_A, r) / _horner_array(AS241_B, r)
    tail = ~(np.abs(q) <= SPLIT1)  # NaN included, fixed below
    if np.any(tail):
        pt, qt = p[tail], q[tail]
        with np.errstate(invalid="ignore", divide="ignore"):
            rt = np.sqrt(-log_array(np.where(qt < 0.0, pt, 1.0 - pt)))
            rn = rt - CONST2
            rf = rt - SPLIT2
            near = _horner_array(AS241_C, rn) / _horner_array(AS241_D, rn)
            far = _horner_array(AS241_E, rf) / _horner_array(AS241_F, rf)
        value = np.where(rt <= SPLIT2, near, far)
        out[tail] = np.where(qt < 0.0, -value, value)
    out = np.where(p == 0.0, -math.inf, np.where(p == 1.0, math.inf, out))
    return np.where((p >= 0.0) & (p <= 1.0), out, math.nan)


# --- sin, cos (fdlibm k_sin.c, k_cos.c, e_rem_pio2.c medium range) ----------------------
# For arguments up to SINCOS_MAX_ARG in magnitude, reduced by the three-step Cody-Waite
# reduction of __ieee754_rem_pio2 (exact to 118 bits there); the large-argument
# Payne-Hanek path is not needed by any caller and not carried.
SINCOS_MAX_ARG = 2.0**19
SIN_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03,
         -1.98412698298579493134e-04, 2.75573137070700676789e-06,
         -2.50507602534068634195e-08, 1.58969099521155010221e-10)  # fmt: skip
COS_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03,
         2.48015872894767294178e-05, -2.75573143513906633035e-07,
         2.08757232129817482790e-09, -1.13596475577881948265e-11)  # fmt: skip
INVPIO2 = 6.36619772367581382433e-01  # 0x3FE45F30 6DC9C883
PIO2_1 = 1.57079632673412561417e00  # 0x3FF921FB 54400000
PIO2_1T = 6.07710050650619224932e-11  # 0x3DD0B461 1A626331
PIO2_2 = 6.07710050630396597660e-11  # 0x3DD0B461 1A600000
PIO2_2T = 2.02226624879595063154e-21  # 0x3BA3198A 2E037073
PIO2_3 = 2.02226624871116645580e-21  # 0x3BA3198A 2E000000
PIO2_3T = 8.47842766036889956997e-32  # 0x397B839A 252049C1
PIO4_HIGH_WORD = 0x3FE921FB  # |x| <= pi/4: no reduction


def _high_words(x: np.ndarray) -> np.ndarray:
    """The high 32 bits of each double, sign cleared, as int64."""
    return ((x.view(np.uint64) >> np.uint64(32)) & np.uint64(0x7FFFFFFF)).astype(np.int64)


def _exponents(x: np.ndarray) -> np.ndarray:
    return (_high_words(x) >> 20) & 0x7FF


def _rem_pio2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x = n * pi/2 + (y0 + y1)``, |y0 + y1| <= pi/4: (n, y0, y1), fdlibm's medium case."""
    t = np.abs(x)
    n = np.trunc(t * INVPIO2 + 0.5)
    r = t - n * PIO2_1
    w = n * PIO2_1T
    y0 = r - w
    j = _exponents(t)
    second = (j - _exponents(y0)) > 16
    if np.any(second):  # cancellation: a second (and maybe third) round
        t2 = r
        w2 = n * PIO2_2
        r2 = t2 - w2
        w2 = n * PIO2_2T - ((t2 - r2) - w2)
        y02 = r2 - w2
        third = second & ((j - _exponents(y02)) > 49)
        t3 = r2
        w3 = n * PIO2_3
        r3 = t3 - w3
        w3 = n * PIO2_3T - ((t3 - r3) - w3)
        r2, w2 = np.where(third, r3, r2), np.where(third, w3, w2)
        r, w = np.where(second, r2, r), np.where(second, w2, w)
        y0 = r - w
    y1 = (r - y0) - w
    negative = x < 0.0
    return (np.where(negative, -n, n).astype(np.int64), np.where(negative, -y0, y0),
            np.where(negative, -y1, y1))


def _kernel_sin(x: np.ndarray, y: np.ndarray, with_tail: np.ndarray) -> np.ndarray:
    z = x * x
    v = z * x
    s1, s2, s3, s4, s5, s6 = SIN_S
    r = s2 + z * (s3 + z * (s4 + z * (s5 + z * s6)))
    plain = x + v * (s1 + z * r)
    tail = x - ((z * (0.5 * y - v * r) - y) - v * s1)
    return np.where(with_tail, tail, plain)


def _kernel_cos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ix = _high_words(x)
    z = x * x
    c1, c2, c3, c4, c5, c6 = COS_C
    r = z * (c1 + z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * c6)))))
    near = 1.0 - (0.5 * z - (z * r - x * y))
    quarter = (ix - 0x00200000).astype(np.uint64) << np.uint64(32)
    qx = np.where(ix > 0x3FE90000, 0.28125, quarter.view(np.float64))
    far = (1.0 - qx) - ((0.5 * z - qx) - (z * r - x * y))
    return np.where(ix < 0x3FD33333, near, far)


def sincos_array(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fdlibm ``sin`` and ``cos`` of a float64 array, |x| <= SINCOS_MAX_ARG."""
    x = np.asarray(x, dtype=np.float64)
    if x.size and not float(np.max(np.abs(x))) <= SINCOS_MAX_ARG:
        raise ValueError(f"sincos_array handles |x| <= {SINCOS_MAX_ARG}")
    small = _high_words(x) <= PIO4_HIGH_WORD
    n, y0, y1 = _rem_pio2(x)
    n = np.where(small, 0, n)
    y0 = np.where(small, x, y0)
    y1 = np.where(small, 0.0, y1)
    ksin = _kernel_sin(y0, y1, ~small)
    kcos = _kernel_cos(y0, y1)
    quadrant = n & 3
    sin = np.choose(quadrant, (ksin, kcos, -ksin, -kcos))
    cos = np.choose(quadrant, (kcos, -ksin, -kcos, ksin))
    return sin, cos
