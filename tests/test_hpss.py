"""covergen.hpss gives librosa's HPSS (scipy's median filter) exactly, and the embedded separator's comb
its per-frame definition: the faster code must not change a single number."""
import librosa
import numpy as np
import pytest
import scipy.ndimage as ndi

from covergen.hpss import hpss, median_filter, softmask
from covergen.separate import _harmonic_comb


@pytest.mark.parametrize("shape,size,axis", [((6, 50), 7, -1), ((6, 50), 8, -1), ((50, 6), 31, 0),
                                             ((3, 4, 9), 4, 1), ((2, 3), 9, -1), ((1, 1), 3, -1)])
def test_median_filter_equals_scipy_reflect(shape, size, axis):
    rng = np.random.default_rng(size)
    x = rng.random(shape).astype(np.float32)
    x[0, :3] = 0.5  # ties
    sizes = [1] * x.ndim
    sizes[axis] = size
    assert np.array_equal(median_filter(x, size=size, axis=axis), ndi.median_filter(x, size=sizes, mode="reflect"))


def test_median_filter_refuses_complex_and_bad_size():
    with pytest.raises(ValueError, match="real array"):
        median_filter(np.ones(4, np.complex64), size=3)
    with pytest.raises(ValueError, match="size"):
        median_filter(np.ones(4), size=0)


@pytest.mark.parametrize("kwargs", [{}, {"kernel_size": (17, 31), "power": 2.0, "mask": True},
                                    {"kernel_size": (31, 13), "margin": (1.0, 2.0)}])
def test_hpss_equals_librosa(kwargs):
    rng = np.random.default_rng(0)
    spec = (rng.standard_normal((257, 300)) + 1j * rng.standard_normal((257, 300))).astype(np.complex64)
    for S in (spec, np.abs(spec)):
        for ours, theirs in zip(hpss(S, **kwargs), librosa.decompose.hpss(S, **kwargs)):
            assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmask_equals_librosa(dtype):
    rng = np.random.default_rng(1)
    x, ref = (rng.random((2, 129, 200)) ** 3).astype(dtype)
    x[:, :10], ref[:, 5:15] = 0.0, 0.0  # bins where one or both are silent
    for power in (0.5, 1.0, 2.0, 3.0):
        for split_zeros in (False, True):
            ours = softmask(x, ref, power=power, split_zeros=split_zeros)
            theirs = librosa.util.softmask(x, ref, power=power, split_zeros=split_zeros)
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), (power, split_zeros)


def test_harmonic_comb_equals_the_bump_per_harmonic():
    freqs = librosa.fft_frequencies(sr=44100, n_fft=4096)
    f0 = np.random.default_rng(1).uniform(110, 1100, 40).astype(np.float32)
    expected = np.empty((len(freqs), len(f0)))
    for t, f in enumerate(f0):
        centres = np.arange(1, int(min(8000.0, freqs[-1]) // f) + 1) * f
        width = np.maximum(1.5 * freqs[1], 0.02 * centres)
        expected[:, t] = np.exp(-0.5 * ((freqs[:, None] - centres[None]) / width[None]) ** 2).max(axis=1)
    assert np.array_equal(_harmonic_comb(freqs, f0), expected)
