"""Greedy decoding and beam search over a step function, for any autoregressive model.

A model enters through its step function ``step(tokens (n,), state, context) → (log_probs (n,
vocab), state)``: ``state`` (lists of arrays with one row per hypothesis, gathered as hypotheses
move) and ``context`` (fixed per input, repeated per beam) are whatever the model needs. The
headline family's step runs a one-step Keras decoder (:func:`kexue.families.seq2seq.model_step`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

StepFn = Callable[[np.ndarray, list, list], tuple[np.ndarray, list]]


def _repeat(arrays: Sequence[np.ndarray], times: int) -> list[np.ndarray]:
    return [np.repeat(np.asarray(a), times, axis=0) for a in arrays]


def greedy_decode(step: StepFn, state: Sequence[np.ndarray], context: Sequence[np.ndarray] = (), *,
                  batch: int, start_id: int, end_id: int, max_len: int, min_len: int = 0
                  ) -> list[tuple[list[int], float]]:
    """The most probable next token at each step until ``end_id`` or ``max_len`` tokens.

    ``step(tokens (n,), state, context) → (log_probs (n, vocab), state)``; ``state`` (gathered
    as hypotheses move) and ``context`` (fixed) are lists of arrays with ``batch`` rows. Returns
    per example ``(tokens without the end token, summed log-probability)``."""
    state, context = list(state), list(context)
    tokens = np.full(batch, start_id, dtype=np.int64)
    out: list[list[int]] = [[] for _ in range(batch)]
    scores = np.zeros(batch)
    done = np.zeros(batch, dtype=bool)
    for t in range(max_len):
        log_probs, state = step(tokens, state, context)
        log_probs = np.array(log_probs, dtype=np.float64)  # (batch, vocab)
        if t < min_len:
            log_probs[:, end_id] = -np.inf
        tokens = log_probs.argmax(axis=1)
        for b in np.flatnonzero(~done):
            scores[b] += log_probs[b, tokens[b]]
            if tokens[b] == end_id:
                done[b] = True
            else:
                out[b].append(int(tokens[b]))
        if done.all():
            break
    return [(seq, float(s)) for seq, s in zip(out, scores, strict=True)]


def beam_search(step: StepFn, state: Sequence[np.ndarray], context: Sequence[np.ndarray] = (), *,
                batch: int, start_id: int, end_id: int, beam_size: int, max_len: int,
                min_len: int = 0, length_penalty: float = 0.0) -> list[tuple[list[int], float]]:
    """Beam search over ``step`` (same contract as :func:`greedy_decode`) for ``batch`` inputs.

    Per input and step, every live hypothesis is extended by every token and the ``beam_size``
    best candidates (summed log-probability; stable order on ties) are kept; a kept candidate
    ending in ``end_id`` is finished and leaves the beam, and hypotheses reaching ``max_len``
    tokens are finished as they are. The end token is banned before ``min_len`` tokens. The
    answer is the finished hypothesis with the best ``score / length^length_penalty`` (length =
    tokens without the end token, at least 1). With ``length_penalty`` 0 an input stops as soon
    as its best finished score is at least every live score (log-probabilities only fall), so a
    beam at least ``vocab^max_len`` wide is exhaustive search, and width 1 is greedy decoding.
    Returns per input ``(tokens without the end token, summed log-probability)``."""
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_search: need beam_size >= 1 and max_len >= 1, got {beam_size}, "
                         f"{max_len}")
    k = beam_size
    state, context = _repeat(state, k), _repeat(context, k)  # rows b*k .. b*k+k-1 are input b's
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis per input at the start
    prefixes: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(batch)]
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    tokens = np.full(batch * k, start_id, dtype=np.int64)

    def normalised(seq: list[int], score: float) -> float:
        return score / max(len(seq), 1) ** length_penalty if length_penalty else score

    for t in range(max_len):
        log_probs, state = step(tokens, state, context)
        log_probs = np.array(log_probs, dtype=np.float64)  # (batch · k, vocab)
        vocab = log_probs.shape[1]
        if t < min_len:
            log_probs[:, end_id] = -np.inf
        candidates = (scores[:, :, None] + log_probs.reshape(batch, k, vocab)).reshape(batch, -1)
        parents = np.tile(np.arange(k), batch).reshape(batch, k) + np.arange(batch)[:, None] * k
        new_scores = np.full((batch, k), -np.inf)
        new_prefixes: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(batch)]
        next_tokens = np.full((batch, k), start_id, dtype=np.int64)
        for b in np.flatnonzero(~done):
            best = np.argsort(-candidates[b], kind="stable")[:k]  # (k,) flat (beam, token) indices
            slot = 0
            for flat in best:
                score = candidates[b, flat]
                if score == -np.inf:
                    break
                beam, token = divmod(int(flat), vocab)
                if token == end_id:
                    finished[b].append((prefixes[b][beam], float(score)))
                    continue
                seq = [*prefixes[b][beam], token]
                if t == max_len - 1:
                    finished[b].append((seq, float(score)))
                    continue
                new_scores[b, slot], new_prefixes[b][slot] = score, seq
                next_tokens[b, slot], parents[b, slot] = token, b * k + beam
                slot += 1
            live = new_scores[b].max()
            if live == -np.inf or (not length_penalty and finished[b]
                                   and max(s for _, s in finished[b]) >= live):
                done[b] = True
        if done.all():
            break
        scores, prefixes, tokens = new_scores, new_prefixes, next_tokens.reshape(-1)
        state = [s[parents.reshape(-1)] for s in state]
    results = []
    for b in range(batch):
        if not finished[b]:  # only when every step banned every token
            results.append(([], -np.inf))
            continue
        results.append(max(finished[b], key=lambda item: normalised(*item)))
    return results
