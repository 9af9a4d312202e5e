"""kexue.timings: stage wall times from DVC's output."""

import json
import sys

from kexue import timings


def test_stage_times_split_the_output_at_each_stage_start(capsys):
    lines = ["Verifying data sources\n", "Running stage 'a':\n", "> python -m x\n",
             "Stage 'b' didn't change, skipping\n", "Running stage 'c@d':\n", "done\n"]
    ticks = iter([10.0, 25.5, 26.0])  # a starts, c@d starts, the output ends
    times = timings.stage_times(lines, clock=lambda: next(ticks), load=lambda: (1.5, 0, 0),
                                now=lambda: "T")
    assert times == {"a": {"seconds": 15.5, "load_1min": 1.5, "finished": "T"},
                     "c@d": {"seconds": 0.5, "load_1min": 1.5, "finished": "T"}}
    assert capsys.readouterr().out == "".join(lines)  # passed through


def test_merge_keeps_earlier_stages_and_ranks_the_slowest(tmp_path):
    path = tmp_path / "t.json"
    first = timings.merge(path, {"a": {"seconds": 5.0}, "b": {"seconds": 1.0}})
    path.write_text(json.dumps(first))
    merged = timings.merge(path, {"b": {"seconds": 7.0}, "c": {"seconds": 2.0}})
    assert merged["stages"] == {"a": {"seconds": 5.0}, "b": {"seconds": 7.0}, "c": {"seconds": 2.0}}
    assert merged["total_seconds"] == 14.0 and merged["slowest"] == ["b", "a", "c"]


def test_main_times_a_command_and_drops_a_failed_stage(tmp_path):
    script = ("import sys; print(\"Running stage 'one':\"); print(\"Running stage 'two':\"); "
              "sys.exit(int(sys.argv[1]))")
    out = tmp_path / "timings.json"
    assert timings.main(["--out", str(out), "--", sys.executable, "-c", script, "0"]) == 0
    assert set(json.loads(out.read_text())["stages"]) == {"one", "two"}
    out.unlink()
    assert timings.main(["--out", str(out), "--", sys.executable, "-c", script, "3"]) == 3
    assert set(json.loads(out.read_text())["stages"]) == {"one"}  # 'two' failed: not timed
