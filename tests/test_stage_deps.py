"""The cache is right only if each stage's deps are what its code uses: the source modules its
command imports (derived here from the code), and every metrics file the report renders."""

import re
import subprocess
import textwrap
from pathlib import Path

import stage_deps
from stage_deps import ROOT, command_closure, dvc_stages, mismatches


def test_every_stage_declares_exactly_the_modules_it_imports():
    assert mismatches(ROOT) == []


def _git_repo(path: Path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    return path


def test_a_removed_dep_is_named_with_its_stage(repo_copy):
    _git_repo(repo_copy)
    path = repo_copy / "dvc.yaml"
    text = path.read_text()
    block = text.index("  prepare_reviews:\n")
    line = text.index("      - src/kexue/config.py\n", block)
    path.write_text(text[:line] + text[line + len("      - src/kexue/config.py\n"):])
    assert mismatches(repo_copy) == [
        "prepare_reviews: imports src/kexue/config.py but does not list it in its deps"]


def test_a_slot_of_a_foreach_item_counts_like_a_listed_dep(repo_copy):
    _git_repo(repo_copy)
    path = repo_copy / "dvc.yaml"
    text = path.read_text()
    ner = text.index("      ner:\n", text.index("  train:\n"))
    slot = re.compile(r"        code\d+: src/kexue/spans.py\n").search(text, ner)
    # the slot now repeats the family module, which the group lists for every item already
    path.write_text(text[:slot.start()] + slot.group(0).replace("spans.py", "families/ner.py")
                    + text[slot.end():])
    assert mismatches(repo_copy) == [
        "train@ner: imports src/kexue/spans.py but does not list it in its deps"]


def test_closure_follows_dispatch_local_imports_and_lazy_names(tmp_path):
    pkg = tmp_path / "src" / "kexue"
    files = {
        "__init__.py": "import os\n",
        "stages/__init__.py": '"""marker"""\n',
        "stages/run.py": "import importlib\nfrom kexue.io import x\n"
                         "def main(a):\n    importlib.import_module(f'kexue.families.{a}')\n",
        "io.py": "x = 1\n",
        "families/__init__.py": '"""marker"""\n',
        "families/alpha.py": "def f():\n    from kexue.layers import Thing\n",
        "families/beta.py": "from kexue import losses\n",
        "losses.py": "",
        "layers/__init__.py": "_LAZY = {'Thing': 'kexue.layers.thing', 'Other': 'kexue.layers.other'}\n",
        "layers/thing.py": "",
        "layers/other.py": "",
    }
    for name, body in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(textwrap.dedent(body))
    stage_deps.direct_imports.cache_clear()
    stage_deps._lazy_table.cache_clear()
    got = command_closure("python -m kexue.stages.run alpha --out x", tmp_path)
    assert got == {f"src/kexue/{n}" for n in ("__init__.py", "stages/__init__.py", "stages/run.py",
                                              "io.py", "families/__init__.py", "families/alpha.py",
                                              "layers/__init__.py", "layers/thing.py")}
    beta = command_closure("python -m kexue.stages.run beta", tmp_path)
    assert "src/kexue/losses.py" in beta and "src/kexue/layers/thing.py" not in beta
    stage_deps.direct_imports.cache_clear()
    stage_deps._lazy_table.cache_clear()


def test_one_family_module_reruns_none_of_the_other_families():
    owners = {s.name.split(":")[-1] for s in dvc_stages(ROOT)
              if "src/kexue/families/ner.py" in stage_deps.declared_sources(s, ROOT)}
    assert owners == {"train@ner", "evaluate@ner", "baselines@ner"}


def test_report_depends_on_every_metrics_file_the_pipeline_writes():
    stages = dvc_stages(ROOT)
    report = next(s for s in stages if s.name.endswith("report"))
    written = {o for s in stages for o in s.outs if o.startswith("metrics/") and o.endswith(".json")}
    assert written and written <= set(report.deps)


def test_no_stage_module_reads_params_yaml_or_a_path_constant_of_another_stage():
    """Inputs come from the command line and the declared params sections: no family or text
    module names a data/, models/ or params.yaml path of its own."""
    offenders = []
    for path in (ROOT / "src/kexue").rglob("*.py"):
        if path.parent.name == "stages" or path.name == "cli.py":
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in (r"load_section\(", r"""["'](?:data|models|metrics|plots)/"""):
            offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text)
                          if path.name != "config.py"]
    assert offenders == []


def test_commands_survive_the_lock_file_round_trip():
    """dvc.lock folds long commands at spaces, and a doubled space or a trailing one does not
    come back: the stage would look changed on every run."""
    bad = [s.name for s in dvc_stages(ROOT) if "  " in s.cmd or s.cmd != s.cmd.strip()]
    assert bad == []
