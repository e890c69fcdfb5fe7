"""Execute the numbered notebooks with papermill: `python -m lib.runner --profile smoke`.

After the fan-out (`lib.fanout`), the notebooks run `--jobs` at a time, in number order, each in
a worker process whose kernel computes with `lib.config.RUN_THREADS` torch threads: what a
notebook computes then does not depend on how many run beside it. Stops at the first failing
notebook (those already running finish), names it and the failing cell, and exits non-zero. The
executed copies go to `<results>/executed/`; wall times go to `benchmarks.json`. While a notebook
runs, the terminal shows what it prints (each cached stage it builds, each claim it records),
each line behind its number.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from lib.config import ROOT, RUN_THREADS, cache_dir, results_dir
from lib.profiles import PRESETS, PROFILES, get_profile, parse_set

NOTEBOOKS = ROOT / "notebooks"
# Wall-time targets in seconds (issues' "Targets") for a run that starts from an empty cache;
# None where no target is set.
TARGETS = {("smoke", "00"): 30, ("default", "all"): 3600}
THREADS_PER_RUN = RUN_THREADS  # torch threads per run (fixed: see lib.config.RUN_THREADS)
# The last fan-out wave (`lib.plans.WAVES`, in build order) whose runs each notebook reads; every
# wave before it is needed too. `--only 04` builds what notebook 04 needs in parallel first,
# rather than one run at a time inside the notebook.
NEEDS = {"00": "prepare", "01": "rms", "02": "rms", "03": "rms", "04": "rl", "05": "warp2"}
# A notebook that reads a cached stage an earlier one builds starts after it, so that two running
# at once do not both build it: notebook 03's best-of-N pool is notebook 00's SFT pool on `default`.
AFTER = {"03": "00"}


def waves_for(numbers: list[str]) -> tuple[str, ...]:
    """The fan-out waves the notebooks `numbers` need, in build order (every wave for an unknown
    number, so a new notebook is never short of a run)."""
    from lib.plans import WAVES

    order = list(WAVES)
    last = max(order.index(NEEDS[n]) if n in NEEDS else len(order) - 1 for n in numbers)
    return tuple(order[: last + 1])


def notebooks(only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks in order, optionally only those whose number is in `only`."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = sorted(set(only) - {p.name[:2] for p in found})
        if unknown:
            raise ValueError(f"--only: no notebook numbered {', '.join(unknown)}; the notebooks are "
                             f"{', '.join(p.name[:2] for p in found)}")
        found = [p for p in found if p.name[:2] in only]
    return found


class _Prefixed:
    """A text stream that writes each line of `stream` behind `prefix` (two notebooks' output
    interleaved stays readable)."""

    def __init__(self, stream, prefix: str):
        self.stream, self.prefix, self.at_start = stream, prefix, True
        self.built = 0  # the cached stages the notebook built, counted from their "[cache] built" lines

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            self.stream.write((self.prefix if self.at_start else "") + piece)
            self.built += self.at_start and piece.startswith("[cache] built ")
            self.at_start = piece.endswith("\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _quiet_kernel_manager():
    """The kernel manager papermill starts, without the SIGINT that jupyter_client sends a kernel
    before every shutdown: a notebook that has finished has nothing to interrupt, and the signal,
    landing while the kernel handles a message, printed "KeyboardInterrupt caught in kernel" into
    a successful run's output."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return QuietKernelManager


def run_notebook(path: Path, profile: str, out_dir: Path, overrides: dict | None = None,
                 prefix: str = "") -> tuple[float, int]:
    """Execute one notebook with papermill (`overrides`: its dotted config keys; `prefix`: put
    before each line it prints); returns its seconds and how many cached stages it built; raises
    on a failing cell."""
    import papermill as pm
    from traitlets.config import Config

    # The kernel talks over Unix-domain sockets (IPC) in a temporary directory, not TCP: no port
    # is opened, and ipykernel has no reason to warn about unencrypted TCP.
    sockets = Config({"KernelManager": {"transport": "ipc",
                                        "ip": str(Path(tempfile.gettempdir()) / f"warm-warp-kernel-{os.getpid()}")}})
    out, err = (_Prefixed(s, prefix) for s in (sys.stdout, sys.stderr))
    start = time.perf_counter()
    pm.execute_notebook(str(path), str(out_dir / path.name),
                        parameters={"profile": profile, "overrides": json.dumps(overrides or {})},
                        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False,
                        log_output=False, stdout_file=out, stderr_file=err,
                        request_save_on_cell_execute=False, config=sockets,
                        kernel_manager_class=_quiet_kernel_manager())
    seconds, built = time.perf_counter() - start, out.built + err.built
    out = out_dir / path.name  # committed results name no machine's paths: make them relative
    out.write_text(out.read_text().replace(str(ROOT) + "/", ""))
    return seconds, built


def _worker(path: Path, profile: str, out_dir: Path, overrides: dict) -> tuple[float, int, str | None]:
    """One notebook in a worker process, its kernel at `RUN_THREADS` torch threads (the kernel
    inherits the environment): (seconds, stages built, None), or (seconds, 0, the failing cell and
    its error)."""
    from papermill.exceptions import PapermillExecutionError

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(RUN_THREADS)
    start = time.perf_counter()
    try:
        return *run_notebook(path, profile, out_dir, overrides, prefix=f"[{path.name[:2]}] "), None
    except PapermillExecutionError as err:
        return time.perf_counter() - start, 0, (f"cell {err.cell_index} (execution count {err.exec_count}): "
                                             f"{err.ename}: {err.evalue}")


def run_notebooks(paths: list[Path], profile: str, out_dir: Path, overrides: dict, jobs: int,
                  on_done=None) -> tuple[Path, str] | None:
    """Execute `paths` `jobs` at a time, in order, each as a worker frees up and once its `AFTER`
    notebook is done; `on_done(path, seconds, stages built)` after each. Returns None, or the
    notebook that failed first and what failed in it; no notebook starts after a failure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    todo, running, failed = list(paths), {}, None

    def ready() -> Path | None:
        """The first notebook to run whose `AFTER` notebook is neither waiting nor running."""
        busy = {nb.name[:2] for nb in [*todo, *running.values()]}
        return next((nb for nb in todo if AFTER.get(nb.name[:2]) not in busy), None)

    spawn = multiprocessing.get_context("spawn")  # a clean interpreter: no torch threads forked
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(paths))), mp_context=spawn) as pool:
        while todo or running:
            while failed is None and len(running) < jobs and (nb := ready()) is not None:
                todo.remove(nb)
                print(f"[run] {nb.name} on profile {profile} ...", flush=True)
                running[pool.submit(_worker, nb, profile, out_dir, overrides)] = nb
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                nb = running.pop(future)
                seconds, built, error = future.result()
                if error is None:
                    on_done and on_done(nb, seconds, built)
                elif failed is None:
                    failed = nb, error
    return failed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_all.sh", description="Execute the numbered notebooks and "
                                "regenerate every figure, the claims and REPORT.md.")
    p.add_argument("--profile", default="default", choices=list(PROFILES),
                   help="smoke: a plumbing check in minutes; default: the science (the committed "
                        "results/); gpu: real TL;DR on a GPU")
    p.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers to run, e.g. --only 00 02")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override (repeatable), e.g. --set rm.epochs=3 --set 'rm.lrs=[1e-4, 3e-4]'")
    p.add_argument("--preset", metavar="NAME", help="a named set of overrides (`lib.profiles.PRESETS`), applied "
                   f"before --set: {', '.join(PRESETS)}")
    p.add_argument("--fresh", action="store_true", help="delete the profile's cache first")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1) // THREADS_PER_RUN),
                   help="processes that build the independent RM and RL runs before the notebooks "
                        f"(`lib.fanout`, {THREADS_PER_RUN} torch thread each; default: the cores / "
                        f"{THREADS_PER_RUN}), then run the notebooks N at a time; 1 builds everything inside "
                        "the notebooks, one after the other")
    return p


def check_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the arguments (profile, overrides, `--only`) before anything runs or is
    installed: a bad one is one line on stderr and exit status 2, as argparse's own errors."""
    args = parser().parse_args(argv)
    try:
        args.overrides = {**({"preset": args.preset} if args.preset else {}), **parse_set(args.set)}
        args.profile_obj = get_profile(args.profile, args.overrides)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be ≥ 1, got {args.jobs}")
        notebooks(args.only)
    except ValueError as err:
        parser().exit(2, f"run_all.sh: error: {err}\n")
    return args


def check_install(interpreter: tuple[str, ...] = (sys.executable,)) -> None:
    """Exit with one clear line unless `interpreter`, started where the kernels start, imports
    this repository's `lib`: an editable install left pointing at another checkout (or none at
    all) would otherwise fail in the first notebook, after `--fresh` had deleted the cache."""
    import subprocess

    find = "import importlib.util as u; s = u.find_spec('lib'); print(s.origin if s else '')"
    out = subprocess.run([*interpreter, "-c", find], cwd=NOTEBOOKS, capture_output=True, text=True)
    found = out.stdout.strip()
    want = ROOT / "lib" / "__init__.py"
    if out.returncode or not found or Path(found).resolve() != want:
        where = f"from {Path(found).parent}" if found else "not at all"
        raise SystemExit(f"run_all.sh: error: {interpreter[0]} imports `lib` {where}, not from {want.parent}; "
                         f"install this repository into it: {interpreter[0]} -m pip install -e {ROOT}")


def main(argv: list[str] | None = None) -> int:
    args = check_args(argv)
    check_install()
    from lib.cache import ArtifactCache
    from lib.report.results import record_benchmark, write_report

    profile = args.profile_obj
    cache = ArtifactCache(cache_dir(profile))
    if args.fresh:
        print(f"[run] --fresh: deleting the cache {cache.root}")
        cache.clear()
    results = results_dir(profile)
    out_dir = results / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = notebooks(args.only)
    empty = not cache.root.exists() or not any(cache.root.iterdir())
    print(f"[run] profile {profile.name}: results in {results}, cache in {cache.root}", flush=True)
    if not empty:
        partial = sorted((cache.root / "partial").glob("*")) if (cache.root / "partial").exists() else []
        print(f"[run] resuming: {cache.count()} stages cached" + (f", {len(partial)} RL runs from a saved step"
              if partial else "") + "; only what is missing is built", flush=True)
    times: dict[str, float] = {}
    if args.jobs > 1:
        from lib.fanout import submit_waves
        from lib.plans import WAVES

        start = time.perf_counter()
        needed = waves_for([nb.name[:2] for nb in selected])
        print(f"[run] building the independent runs ({', '.join(needed)}) in {args.jobs} processes × "
              f"{THREADS_PER_RUN} thread", flush=True)
        waves: dict[str, float] = {}
        submit_waves(profile.name, args.overrides, args.jobs, "local", waves=needed, threads=THREADS_PER_RUN,
                     timings=waves)
        times["fan-out"] = time.perf_counter() - start
        print(f"[run] fan-out done in {times['fan-out']:.0f} s", flush=True)
    start = time.perf_counter()

    def done(nb: Path, seconds: float, built: int) -> None:
        number = nb.name[:2]
        times[number] = seconds
        # A notebook's time is a benchmark in a run from an empty cache, or when it built nothing;
        # one that rebuilt part of what it reads (a resumed run) is neither.
        state = "in a run from an empty cache" if empty else "cache present" if not built else None
        if not args.overrides and state:
            record_benchmark(results, name=f"notebook {number} wall time ({state})", ours=seconds,
                             baseline=TARGETS.get((profile.name, number)) if empty else None,
                             unit="s", profile=profile.name)
        print(f"[run] done {nb.name} in {seconds:.0f} s ({state or f'resumed: built {built} stages'})", flush=True)

    failed = run_notebooks(selected, profile.name, out_dir, args.overrides, args.jobs, on_done=done)
    if failed:
        nb, what = failed
        print(f"[run] FAILED: {nb.name}, {what}\n[run] the executed notebook with the traceback: "
              f"{out_dir / nb.name}", file=sys.stderr)
        return 1
    times["notebooks"] = time.perf_counter() - start
    print(f"[run] notebooks done in {times['notebooks']:.0f} s, {min(args.jobs, len(selected))} at a time",
          flush=True)
    state = "in a run from an empty cache"
    if "fan-out" in times and empty and not args.overrides and not args.only:
        record_benchmark(results, name=f"fan-out of the RM and RL runs, {args.jobs} processes ({state})",
                         ours=times["fan-out"], baseline=None, unit="s", profile=profile.name)
        for wave, seconds in waves.items():  # where the time goes, wave by wave
            record_benchmark(results, name=f"fan-out wave {wave}, {WAVES[wave]} ({state})", ours=seconds,
                             baseline=None, unit="s", profile=profile.name)
    if empty and not args.overrides and all(p.name[:2] in times for p in notebooks()):
        record_benchmark(results, name=f"whole run wall time, fan-out + every notebook ({state})",
                         ours=times.get("fan-out", 0.0) + times["notebooks"],
                         baseline=TARGETS.get((profile.name, "all")), unit="s", profile=profile.name)
    print(f"[run] report: {write_report(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
