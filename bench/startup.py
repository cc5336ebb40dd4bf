#!/usr/bin/python3
"""bench/startup.py: how long a user waits for the first vector (bench/run.sh step 0).

    startup.py OUT_DIR WEIGHTS PHOTOS ROUNDS BUILD [BUILD...]

For each BUILD directory (its extract/bottleneck-extract and
classify/bottleneck-classify), ROUNDS times, alternating the builds within
each round so that they share the machine's state:
  - extract_one: `bottleneck-extract` on a folder of one photo into a new
    database, wall time from launch to exit, and from launch to the moment
    its vector is in the database (first_vector: the database is polled
    read-only every 5 ms once it is in WAL mode, so this is within 5 ms of
    the commit; a run that exits before a poll sees it counts its exit);
  - predict_one: `bottleneck-classify predict --run N PHOTO` on a copy of a
    database holding a trained head (so that the photo is new and extracted),
    wall time from launch to exit.
Before the rounds, extract_one_cold: each build once with an empty kernel
cache (the first run on a machine; builds without the cache compute the same
work every time). The kernel cache is OUT_DIR/kcache-K, one per build, so the
user's cache is not touched. The page cache is warm: the weights and the
photos have been read before the rounds.

Prints one `RESULT startup ...` line per run (wall seconds, the CPU seconds
of the process, the load average) and one `RESULT startup_median ...` line
per build and measurement.
"""
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time


def timed(cmd, env):
    """Wall seconds from launch to exit, and the CPU seconds (user + system)
    the process used: on a shared host the second says what the first would
    be on a quiet one."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"startup.py: {' '.join(cmd)} failed: {err.decode(errors='replace')}")
    return wall, ru.ru_utime + ru.ru_stime


def first_vector(cmd, env, db):
    """timed() of an extract into a new database db, plus the wall seconds
    from launch until a vector is committed there (polled read-only; a WAL
    reader never blocks the writer)."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if first is None and os.path.exists(db + "-wal"):
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
                if con.execute("SELECT count(*) FROM vectors").fetchone()[0] > 0:
                    first = time.monotonic() - t
                con.close()
            except sqlite3.Error:
                pass  # schema not there yet
        time.sleep(0.005)
    wall = time.monotonic() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"startup.py: {' '.join(cmd)} failed")
    return wall, ru.ru_utime + ru.ru_stime, first if first is not None else wall


def main():
    out, weights, photos, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    builds = sys.argv[5:]
    classes = sorted(d for d in os.listdir(photos) if os.path.isdir(os.path.join(photos, d)))
    files = {c: sorted(os.listdir(os.path.join(photos, c))) for c in classes}
    # one photo to extract, six per class to train on, one new photo to predict
    one = os.path.join(out, "startup-one")
    train = os.path.join(out, "startup-train")
    for d in (one, train):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(one, classes[0]))
    os.symlink(os.path.join(photos, classes[0], files[classes[0]][0]),
               os.path.join(one, classes[0], files[classes[0]][0]))
    for c in classes:
        os.makedirs(os.path.join(train, c))
        for f in files[c][1:7]:
            os.symlink(os.path.join(photos, c, f), os.path.join(train, c, f))
    new_photo = os.path.join(photos, classes[-1], files[classes[-1]][-1])
    for path in (weights, new_photo):  # warm page cache
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass

    def env_for(k):
        return dict(os.environ, BOTTLENECK_KERNEL_CACHE=os.path.join(out, f"kcache-{k}"))

    def exe(build, name):
        return os.path.join(build, name, f"bottleneck-{name}")

    # The trained head, made by the first build; every build predicts with it.
    trained = os.path.join(out, "startup-trained.db")
    for p in (trained, trained + "-wal", trained + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    for k in range(len(builds)):
        shutil.rmtree(env_for(k)["BOTTLENECK_KERNEL_CACHE"], ignore_errors=True)
    b0 = builds[0]
    timed([exe(b0, "extract"), "--weights", weights, "--db", trained, "--quiet", train],
          env_for(0))
    timed([exe(b0, "classify"), "--db", trained, "--quiet", "--C", "1"], env_for(0))
    run = sqlite3.connect(trained).execute(
        "SELECT coalesce(final, chosen) FROM sweeps ORDER BY id DESC LIMIT 1").fetchone()[0]

    results = {}

    def record(k, what, i, wall_cpu):
        wall, cpu = wall_cpu[:2]
        first = wall_cpu[2] if len(wall_cpu) > 2 else None
        results.setdefault((k, what), []).append((wall, cpu, first))
        extra = f" first_vector_s={first:.3f}" if first is not None else ""
        print(f"RESULT startup build={builds[k]} what={what} round={i} wall_s={wall:.3f} "
              f"cpu_s={cpu:.3f}{extra} load1={os.getloadavg()[0]:.1f}", flush=True)

    def extract_one(k, i, what):
        db = os.path.join(out, f"startup-one-{k}.db")
        for p in (db, db + "-wal", db + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        record(k, what, i, first_vector([exe(builds[k], "extract"), "--weights", weights, "--db",
                                         db, "--quiet", one], env_for(k), db))

    def predict_one(k, i):
        db = os.path.join(out, f"startup-predict-{k}.db")
        shutil.copyfile(trained, db)
        for p in (db + "-wal", db + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        record(k, "predict_one", i,
               timed([exe(builds[k], "classify"), "--db", db, "--quiet", "predict", "--run",
                      str(run), "--weights", weights, new_photo], env_for(k)))

    for k in range(len(builds)):
        shutil.rmtree(env_for(k)["BOTTLENECK_KERNEL_CACHE"], ignore_errors=True)
        extract_one(k, 0, "extract_one_cold")
    for i in range(1, rounds + 1):
        for k in range(len(builds)):
            extract_one(k, i, "extract_one")
            predict_one(k, i)
    for (k, what), v in sorted(results.items()):
        walls = [w for w, _, _ in v]
        cpus = [c for _, c, _ in v]
        firsts = [f for _, _, f in v if f is not None]
        extra = (f" first_vector_s_median={statistics.median(firsts):.3f} "
                 f"first_vector_s_min={min(firsts):.3f} first_vector_s_max={max(firsts):.3f}"
                 if firsts else "")
        print(f"RESULT startup_median build={builds[k]} what={what} runs={len(v)} "
              f"wall_s_median={statistics.median(walls):.3f} wall_s_min={min(walls):.3f} "
              f"wall_s_max={max(walls):.3f} cpu_s_median={statistics.median(cpus):.3f}"
              f"{extra} load1={os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
