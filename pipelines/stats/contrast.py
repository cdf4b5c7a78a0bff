"""Linear contrasts of estimates, as R's `svycontrast`: a composite of item means (or of
components) is L·m with covariance L Σ L'; one function so that every composite is combined the
same way (tests/test_estimation.py compares it with R)."""

from __future__ import annotations

import numpy as np


def contrast(estimates: np.ndarray, cov: np.ndarray,
             coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(… × K estimates L·m, … × K × K covariance L Σ L') of the … × J `estimates` with … × J × J
    covariance `cov`, for the K × J coefficient matrix L (a vector of J: K = 1). Leading axes are
    domains (counties); NaN in a used estimate or covariance propagates, as no estimate."""
    matrix = np.atleast_2d(np.asarray(coefficients, dtype=np.float64))
    return (np.asarray(estimates) @ matrix.T,
            np.einsum("kj,...jl,ml->...km", matrix, np.asarray(cov), matrix))
