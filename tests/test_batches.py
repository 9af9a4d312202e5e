import numpy as np

from kexue.batches import SequenceBatches, pad
from kexue.text.vocab import Vocab


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 50, size=rng.integers(1, 40)).astype(np.int32) for _ in range(n)]


def test_pad():
    out = pad([np.array([3, 4]), np.array([5])])
    assert out.tolist() == [[3, 4], [5, 0]]


def test_every_example_once_per_epoch_and_reproducible():
    seqs = _data()
    labels = np.arange(len(seqs))
    a = SequenceBatches(seqs, labels, batch_size=16, seed=7)
    b = SequenceBatches(seqs, labels, batch_size=16, seed=7)
    seen = np.concatenate([a[i][1] for i in range(len(a))])
    assert sorted(seen.tolist()) == list(range(len(seqs)))
    first = a.order().copy()
    a.on_epoch_end()
    assert not np.array_equal(first, a.order())  # reshuffled
    b.set_epoch(1)  # jumping to epoch 1 gives the same batches as running through epoch 0
    assert np.array_equal(a.order(), b.order())


def test_batches_are_length_bucketed():
    seqs = _data(1000)
    batches = SequenceBatches(seqs, np.zeros(1000), batch_size=32, seed=0)
    padded = sum(batches[i][0].size for i in range(len(batches)))
    naive = 1000 * max(len(s) for s in seqs)
    assert padded < 0.6 * naive


def test_unshuffled_order_maps_back():
    seqs = _data(50)
    batches = SequenceBatches(seqs, None, batch_size=8, shuffle=False)
    rows = np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])
    restored = np.empty_like(rows)
    restored[batches.order()] = rows
    assert restored.tolist() == [int(s[0]) for s in seqs]


def test_vocab_build_encode_save(tmp_path):
    vocab = Vocab.build([list("好书好"), list("差书")], min_count=1)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "书", "好"]  # by count, then by character
    assert vocab.encode(list("好坏"), maxlen=5).tolist() == [3, 1]
    assert vocab.encode([]).tolist() == [1]
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").tokens == vocab.tokens
    assert len(Vocab.build([list("好书好"), list("差书")], min_count=2)) == 4
