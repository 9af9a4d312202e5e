"""Loaded by every Python process started with this directory on PYTHONPATH (the tiny end-to-end
test puts it there for `dvc repro`). When KEXUE_AUDIT_LOG names a file, each `kexue.stages`
process appends one JSON line per file it opens (path, read or write) and per params section it
loads (the `kexue.params` audit event of kexue.config.load_section), with its argv, so the test
can compare what a stage touches with what dvc.yaml declares."""

import json
import os
import sys

_LOG = os.environ.get("KEXUE_AUDIT_LOG")
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WATCHED = ("data", "models", "metrics", "plots", "reports")  # pipeline files, relative to cwd


def _install(path: str) -> None:
    # opened before the hook (so not logged itself) and kept open for the life of the process
    handle = open(path, "a", encoding="utf-8")  # noqa: SIM115
    busy = False

    def hook(event: str, args: tuple) -> None:
        nonlocal busy
        if busy or event not in ("open", "kexue.params"):
            return
        argv = list(sys.argv)
        if not argv or "kexue/stages/" not in str(argv[0]).replace(os.sep, "/"):
            return
        busy = True
        try:
            if event == "kexue.params":
                record = {"argv": argv, "params": args[0]}
            else:
                target, _mode, flags = args
                if isinstance(target, int):
                    return
                target = os.path.relpath(os.path.abspath(os.fsdecode(target)))
                # a folder opened for its descriptor (shutil.rmtree walks with dir_fd, so its
                # names are not relative to the working directory): no file is read
                if target.split(os.sep)[0] not in _WATCHED or os.path.isdir(target):
                    return
                record = {"argv": argv, "path": target.replace(os.sep, "/"),
                          "write": bool((flags or 0) & _WRITE)}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
        finally:
            busy = False

    sys.addaudithook(hook)


if _LOG:
    _install(_LOG)
