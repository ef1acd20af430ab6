"""BatchBALD: greedy batches of maximal joint mutual information with the weights (Kirsch,
van Amersfoort & Gal 2019), from MC-dropout passes.

    a_BatchBALD({x_1..x_b}) = H(y_1..y_b) - sum_i E_w H(y_i | x_i, w)

Greedy: each step adds the item that maximises the joint mutual information of the batch so
far with it. With the T passes p_t, the chosen items' joint label configurations y_A have
`P_t(y_A) = prod_{i in A} p_t(y_i|x_i)` and `q(y_A) = mean_t P_t(y_A)`; by the chain rule

    H(y_A, y_n) = H(y_A) + E_{y_A ~ q} H( sum_t w_t(y_A) p_t(.|x_n) ),
    w_t(y_A) = P_t(y_A) / sum_t' P_t'(y_A)   (the passes' posterior given the configuration),

so the gain of candidate n is `E_{y_A} H(y_n | y_A) - E_w H(y_n|w)`: per step, one
(M, T) x (T, candidates*C) matrix product and one entropy per row, over M configurations of
y_A. These are all C^|A| configurations, weighted by q, while C times the configurations so far
is at most `num_samples` (exact; configurations of probability 0 are dropped); beyond that,
`num_samples` configurations drawn from q and weighted 1/M (importance sampling with q itself,
as the paper and batchbald_redux do): ceil(num_samples / T) per pass t, each drawn from p_t;
identical draws are merged, weighted by their count. Later picks extend the draws by one label
each (from the configuration's own pass), with `ctx.rng`.

The passes must be consistent: pass t one draw w_t of the weights for every item (one dropout
mask per pass, shared by all rows; Kirsch et al.'s "consistent MC dropout"). With a mask drawn
per row the items' passes are independent and the joint reduces to top-k BALD plus noise
(tests/test_strategies_batchbald.py checks the MLP's passes for this).

Precision: log P_t(y_A) in float64 (products of many small probabilities do not underflow),
the exact expectation in float64; the sampled one in float32 (its Monte Carlo error, about
1/sqrt(M), is orders above float32 rounding; 2.5x faster), factors below 1.1e-19 set to 0
(no subnormal products, which would slow it several times over).

Differences from scikit-activeml's `BatchBALD` (a NumPy port of batchbald_redux), which gives
the same picks and utilities where both are exact (tests/test_strategies_batchbald.py):

- it clips probabilities to [1e-7, 1] before the logarithm; we use 0 log 0 = 0;
- ties: it breaks them with `rand_argmax`; we take the lower position, as every strategy here;
- beyond the exact limit it redraws all configurations at every step (and its limit is its
  `n_MC_samples`, which defaults to T); we extend the draws of the step before;
- it considers every unlabelled item; we, by default, the 20 x n of highest BALD score
  (`candidates_per_pick`, as the paper's own code can).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from al_research.models.base import Capability
from al_research.strategies.bald import mutual_information
from al_research.strategies.base import Query, QueryContext, Strategy, top_k
from al_research.strategies.uncertainty import entropy

# elements of the (M, candidates * C) matrix computed at once: 2 MB of float64, in cache
_CHUNK_ELEMENTS = 1 << 18
# float32 factors below sqrt(smallest normal) ~ 1.1e-19 are set to 0, so that no product of two
# is subnormal (subnormals slow float32 arithmetic several times over); a probability moves by
# at most T * 1.1e-19
_FLUSH = float(np.sqrt(np.finfo(np.float32).tiny)) * 1.01


def _logsumexp_rows(log_p: np.ndarray) -> np.ndarray:
    """log sum_t exp(log_p[m, t]) per row, stable; rows of -inf give -inf."""
    top = log_p.max(axis=1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(log_p - safe[:, None]).sum(axis=1)) + safe


class _Configurations:
    """The chosen items' joint label configurations: all of them, or drawn from q.

    `log_p` is log P_t(y_A) per configuration (M, T), in the order of itertools.product over
    the chosen items' classes while exact; once drawn, `labels` holds the configurations
    (M, |A|) and `passes` the pass each was drawn from (both None while exact).
    """

    def __init__(self, t: int, num_samples: int, rng: np.random.Generator) -> None:
        self.t, self.num_samples, self.rng = t, num_samples, rng
        self.log_p = np.zeros((1, t))  # the empty configuration, probability 1 under every pass
        self.labels: np.ndarray | None = None
        self.passes: np.ndarray | None = None
        self.items: list[np.ndarray] = []  # the chosen items' passes (T, C), for redrawing

    def add(self, probs: np.ndarray) -> None:
        """Add one chosen item, `probs` its passes' probabilities (T, C), float64."""
        self.items.append(probs)
        t, c = probs.shape
        if self.passes is None and len(self.log_p) * c <= self.num_samples:
            m = len(self.log_p)
            log_p = (self.log_p[:, None, :] + _log(probs).T[None, :, :]).reshape(m * c, t)
            self.log_p = log_p[np.isfinite(log_p.max(axis=1))]  # q(y_A) = 0: no weight
        elif self.passes is None:  # past the exact limit: draw every chosen item's label
            self.passes = np.repeat(np.arange(t), -(-self.num_samples // t))
            self.log_p = np.zeros((len(self.passes), t))
            self.labels = np.zeros((len(self.passes), 0), dtype=np.int64)
            for item in self.items:
                self._draw(item)
        else:
            self._draw(probs)

    def _draw(self, probs: np.ndarray) -> None:
        """Extend every drawn configuration by a label drawn from its own pass's p_t."""
        assert self.passes is not None and self.labels is not None
        cdf = np.cumsum(probs, axis=1)[self.passes]  # (M, C)
        u = self.rng.random(len(self.passes)) * cdf[:, -1]
        label = np.minimum((u[:, None] >= cdf).sum(axis=1), probs.shape[1] - 1)
        self.labels = np.concatenate([self.labels, label[:, None]], axis=1)
        self.log_p = self.log_p + _log(probs)[:, label].T

    def weights(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(pi, w, H(y_A)): each configuration's weight in the expectation over y_A (M,), the
        passes' posterior given it (M, T), and the (estimated) joint entropy of y_A."""
        log_p, pi = self.log_p, None
        if self.labels is not None:  # identical draws: one row, weighted by their count
            _, first, counts = np.unique(self.labels, axis=0, return_index=True,
                                         return_counts=True)
            log_p, pi = log_p[first], counts / len(self.passes)
        log_total = _logsumexp_rows(log_p)
        log_q = log_total - np.log(self.t)
        w = np.exp(log_p - log_total[:, None])
        if pi is None:  # exact: each configuration weighted by its probability
            pi = np.exp(log_q)
        return pi, w, float(-(pi * log_q).sum())


def _log(probs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(probs)  # -inf where a pass gives probability 0


def conditional_entropy(samples: np.ndarray) -> np.ndarray:
    """E_w H(y|x, w): the passes' mean entropy per item, samples (T, n, C), float64."""
    t, n, c = samples.shape
    return entropy(samples.reshape(t * n, c)).reshape(t, n).mean(axis=0)


def _expected_entropy(pi: np.ndarray, w: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """E_{y_A} H(y_n | y_A) for every candidate n: sum_m pi_m H(sum_t w[m, t] p_t(.|x_n)),
    in the precision of `samples` (T, n, C); chunked over the candidates, into buffers reused
    chunk to chunk (fresh large temporaries cost more in page faults than the logarithms)."""
    t, n, c = samples.shape
    dtype = samples.dtype
    pi, w = pi.astype(dtype), w.astype(dtype)
    if dtype == np.float32:  # no subnormal products (see _FLUSH)
        w[w < _FLUSH] = 0.0
    m = len(pi)
    flat = samples.reshape(t, n * c)
    out = np.empty(n)
    step = max(1, min(n, _CHUNK_ELEMENTS // (m * c)))
    r_buf, log_buf = np.empty(m * step * c, dtype), np.empty(m * step * c, dtype)
    tiny = np.finfo(dtype).tiny  # r = 0 gives 0 * log(tiny) = 0
    for start in range(0, n, step):
        stop = min(n, start + step)
        size = m * (stop - start) * c
        r = r_buf[:size].reshape(m, (stop - start) * c)
        log_r = log_buf[:size].reshape(r.shape)
        np.matmul(w, flat[:, start * c:stop * c], out=r)  # p(y_n | y_A), (M, chunk * C)
        np.maximum(r, tiny, out=log_r)
        np.log(log_r, out=log_r)
        np.multiply(r, log_r, out=r)
        out[start:stop] = -(pi @ r).reshape(stop - start, c).sum(axis=1, dtype=np.float64)
    return out


def batchbald(samples: np.ndarray, n: int, num_samples: int, rng: np.random.Generator,
              candidates: np.ndarray | None = None, bald: np.ndarray | None = None,
              return_utilities: bool = False):
    """Greedy BatchBALD over `samples` (T, N, C): the positions of the `n` picks, in order.

    `candidates`: the positions considered (default: all), in ascending order. With
    `return_utilities`, also a (steps, N) array: at step i, a_BatchBALD(A_i + {x_n}) for every
    candidate n (NaN for those chosen before and for non-candidates) and the marginal gain of
    each pick (a_BatchBALD(A_{i+1}) - a_BatchBALD(A_i)). The first step's utilities are BALD's
    mutual information (`bald`, every item's, if already computed). Ties go to the lower
    position.
    """
    samples = np.asarray(samples)
    if samples.ndim != 3:
        raise ValueError(f"MC samples must have shape (T, n, classes), got {samples.shape}")
    t, size, c = samples.shape
    cand = np.arange(size) if candidates is None else np.asarray(candidates, dtype=np.int64)
    steps = max(0, min(n, len(cand)))
    utilities = np.full((steps, size), np.nan) if return_utilities else None
    gains = np.empty(steps)
    if steps == 0:
        empty = np.empty(0, dtype=np.int64)
        return (empty, utilities, gains) if return_utilities else empty
    cand_samples = np.asarray(samples[:, cand], dtype=np.float64)
    cand_single = None  # the same in float32, once configurations are drawn
    cond = conditional_entropy(cand_samples)
    configs = _Configurations(t, num_samples, rng)
    taken = np.zeros(len(cand), dtype=bool)
    picks: list[int] = []
    cond_taken = 0.0  # sum of E_w H(y_i|w) over the picks so far
    for step in range(steps):
        if step == 0:  # BALD's utility exactly: the first pick is BALD's top 1
            gain = (mutual_information(samples[:, cand]) if bald is None
                    else np.asarray(bald, dtype=np.float64)[cand])
            joint = gain
        else:
            pi, w, h_a = configs.weights()
            if configs.passes is None:
                h_cond = _expected_entropy(pi, w, cand_samples)
            else:  # a Monte Carlo estimate: float32's rounding is far below its error
                if cand_single is None:
                    cand_single = cand_samples.astype(np.float32)
                    cand_single[cand_single < _FLUSH] = 0.0
                h_cond = _expected_entropy(pi, w, cand_single)
            gain = h_cond - cond
            joint = h_a + h_cond - cond - cond_taken  # H(y_A, y_n) - sum of E_w H
        gain = np.where(taken, np.nan, gain)
        best = int(top_k(gain, 1)[0])
        gains[step] = gain[best]
        if utilities is not None:
            utilities[step, cand] = np.where(taken, np.nan, joint)
        taken[best] = True
        cond_taken += cond[best]
        picks.append(best)
        if step + 1 < steps:
            configs.add(cand_samples[:, best])
    positions = cand[np.asarray(picks, dtype=np.int64)]
    return (positions, utilities, gains) if return_utilities else positions


class BatchBALD(Strategy):
    """Label the batch whose labels jointly tell most about the weights: greedy BatchBALD over
    `mc_samples` MC-dropout passes (see the module docstring for the estimator). Unlike top-k
    BALD it does not take near-duplicates of an informative item twice: the second copy's
    label is predictable from the first's.

    Candidates: the `candidates_per_pick * n` unlabelled items of highest BALD score (ties to
    the lower position), or all with `candidates_per_pick: null`. Each greedy step costs
    O(num_samples x T x candidates x C), so the batch costs O(n^2) with the pre-filter and
    O(n x pool) without it.

    Needs a model with dropout (`mlp`, `cnn`); `check_capabilities` refuses others before any
    work. The scores logged are BALD's (the first step's utilities, every unlabelled item).
    """

    @dataclass
    class Params:
        """BatchBALD's hyperparameters.

        mc_samples: stochastic forward passes T per round (>= 2). Kirsch et al. (2019) and
            Gal et al. (2017) use 20 in their MNIST experiments.
        num_samples: while the chosen items have at most this many joint label
            configurations they are enumerated exactly; beyond, this many are drawn (>= 1).
            1,000 by default (batchbald_redux's examples use 10,000): the sampled estimate's
            error is then about 3% of the joint entropy, at a tenth of the cost (a batch of 50
            from 60,000 items: 1.1 s against 9.1 s, benchmarks/README.md; a batch of 200 from
            3,000 candidates: 18 s against 160 s).
        candidates_per_pick: a pre-filter for speed: only the `candidates_per_pick x n` items
            of highest BALD score are candidates (>= 1; null: every unlabelled item). The
            paper's code culls the pool so too (`min_candidates_per_acquired_item`, 20).
        """

        mc_samples: int = 20
        num_samples: int = 1_000
        candidates_per_pick: int | None = 20

        def __post_init__(self) -> None:
            if self.mc_samples < 2:
                raise ValueError(
                    f"batchbald: mc_samples must be >= 2 (mutual information needs at least "
                    f"two stochastic passes), got {self.mc_samples}")
            if self.num_samples < 1:
                raise ValueError(
                    f"batchbald: num_samples must be >= 1 (joint label configurations), got "
                    f"{self.num_samples}")
            if self.candidates_per_pick is not None and self.candidates_per_pick < 1:
                raise ValueError(
                    f"batchbald: candidates_per_pick must be >= 1 or null (every unlabelled "
                    f"item), got {self.candidates_per_pick}")

    name: ClassVar[str] = "batchbald"
    needs = frozenset({Capability.MC_SAMPLES})

    def query(self, ctx: QueryContext, n: int) -> Query:
        samples = ctx.mc_samples(self.params.mc_samples)
        bald = mutual_information(samples)
        per_pick = self.params.candidates_per_pick
        candidates = None
        if per_pick is not None and per_pick * n < len(bald):
            candidates = np.sort(top_k(bald, per_pick * n))
        positions = batchbald(samples, n, self.params.num_samples, ctx.rng, candidates, bald)
        return Query(positions, bald, "mutual_information")
