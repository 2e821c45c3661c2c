"""A process that has imported Snakemake once and forks one child per Snakemake run of the tests.

A fresh ``snakemake`` spends about 0.9 s of a 1.8 s dry run starting Python, importing Snakemake
and collecting its plugins; the tests make a hundred such runs. Each child here starts from that
imported state and runs exactly what the ``snakemake`` command runs (``snakemake.cli.main``), in
its own directory, environment, output files and process group. It imports nothing of the
workflow: every child reads the Snakefile and its package afresh, as a new process would.

Protocol (conftest.SnakemakeForks): one JSON request per line on stdin, {"args", "cwd", "env",
"stdout", "stderr", "pid_file"}; one line back on stdout with the run's exit status, as
``subprocess`` gives it (negative: the signal that ended it).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import traceback

from snakemake.cli import get_argument_parser, main
from snakemake.executors import touch

get_argument_parser()  # collects every plugin once, for all children

# --touch sleeps 0.1 s before touching each job's outputs, so that file systems with coarse
# timestamps still see them in order: 7 of the 9 s of touching the tiny config's 69 jobs. Linux file
# systems keep far finer timestamps, and a tie plans nothing either (an input is outdated only when
# strictly newer); every touched fixture asserts that its run then plans nothing.
assert touch.Executor.SLEEPING_TIME > 0, "Snakemake's --touch no longer pauses: drop this line"
touch.Executor.SLEEPING_TIME = 0


def run_child(request: dict) -> None:
    """In the forked child: become the requested ``snakemake`` process; never returns."""
    code = 1
    try:
        os.setsid()  # its own process group: a timeout kills the run with every job it started
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(path, flags, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = ["snakemake", *request["args"]]
        main(request["args"])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()  # what a process that exits runs (logging's flush, Snakemake's own)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(request)
        with open(request["pid_file"], "w") as pid_file:
            pid_file.write(str(pid))
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
