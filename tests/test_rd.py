import numpy as np

from nicjax import rd


def test_envelope_is_the_upper_concave_pareto_front():
    rates = np.array([1.0, 2.0, 3.0, 2.5, 4.0, 1.5, 5.0])
    psnrs = np.array([20.0, 25.0, 27.0, 24.0, 27.5, 21.0, 27.4])
    hull = rd.envelope(rates, psnrs)
    # (2.5, 24) is dominated, (1.5, 21) is below the chord 1→2, (5, 27.4) is worse than the cheaper (4, 27.5)
    assert list(hull) == [0, 1, 2, 4]
    r, p = rates[hull], psnrs[hull]
    assert np.all(np.diff(r) > 0) and np.all(np.diff(p) > 0)
    slopes = np.diff(p) / np.diff(r)
    assert np.all(np.diff(slopes) < 0)


def test_bd_rate_of_a_curve_shifted_in_rate():
    rate = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    psnr = np.array([24.0, 27.0, 30.0, 33.0, 36.0])
    assert abs(rd.bd_rate(rate, psnr, rate * 0.8, psnr) - (-20.0)) < 0.5
    assert abs(rd.bd_rate(rate, psnr, rate, psnr)) < 1e-6
    assert rd.bd_psnr(rate, psnr, rate, psnr + 1.0) > 0.9
    assert np.isnan(rd.bd_rate(rate, psnr, rate, psnr + 100))  # no overlap: no number
