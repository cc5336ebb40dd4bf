#!/usr/bin/python3
"""bench_sweep.py: a C sweep of logistic-regression heads, bottleneck-classify
against scikit-learn on the same stored vectors, in one run.

    /usr/bin/python3 bench/bench_sweep.py DB FEATURESET [--C 1e-4,...] [--standardize]
        [--classify build/classify/bottleneck-classify] [--rounds 3] [--reference]

Both sides read the vectors of FEATURESET from DB (the `embeddings` view;
splits train, validation, test), train one binary head per C on the training
rows, choose the C of best validation accuracy (ties: lower log loss, as
bottleneck), and report its test accuracy. Each side is timed as a separate
process, wall clock from start to exit, loading included (for scikit-learn:
interpreter start, imports, reading SQLite, numpy, fitting); the rounds
alternate the two and the medians of wall and CPU time (user + system, of the process
and its threads) are compared: on a shared machine the CPU time is the
steadier of the two. Then the objective of every candidate is checked:
scikit-learn's (--reference: run again to its optimum, lbfgs tol 1e-10; else
the timed run's, defaults tol 1e-4 and max_iter 100) against the objective
bottleneck reports, relative difference printed; and the validation and
test accuracies of both. scikit-learn: Debian python3-sklearn. The runs
bottleneck stores (note 'bench_sweep') stay in DB: use a copy.
"""
import json, os, subprocess, sys, time

def load(db, fs):
    import sqlite3
    import numpy as np
    con = sqlite3.connect(db)
    out = {}
    for split in ("train", "validation", "test"):
        rows = con.execute("SELECT label, vector, dim FROM embeddings WHERE featureset = ? AND split = ?"
                           " ORDER BY path", (fs, split)).fetchall()
        if rows:
            X = np.frombuffer(b"".join(r[1] for r in rows), "<f4").reshape(len(rows), rows[0][2])
            out[split] = (X, np.array([r[0] for r in rows]))
    return out

def sklearn_sweep(db, fs, Cs, standardize, tol, max_iter):
    """The user's script: returns per C (objective, validation acc, log loss), the chosen C, test acc."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.metrics import accuracy_score, log_loss
    import warnings
    warnings.simplefilter("ignore")
    data = load(db, fs)
    Xtr, ytr = data["train"]
    classes = np.unique(ytr)
    ytr = (ytr == classes[1]).astype(int)
    Xva, yva = data["validation"][0], (data["validation"][1] == classes[1]).astype(int)
    if standardize:
        sc = StandardScaler().fit(Xtr)
        Xtr, Xva = sc.transform(Xtr), sc.transform(Xva)
    res, best = [], None
    for C in Cs:
        m = LogisticRegression(C=C, tol=tol, max_iter=max_iter).fit(Xtr, ytr)
        z = Xtr.astype(np.float64) @ m.coef_.ravel() + m.intercept_[0]
        f = 0.5 * np.sum(m.coef_ ** 2) + C * np.sum(np.logaddexp(0, z) - ytr * z)
        p = m.predict_proba(Xva)
        acc, ll = accuracy_score(yva, p[:, 1] > 0.5), log_loss(yva, p)
        res.append((C, f, acc, ll, m))
        if best is None or acc > best[2] or (acc == best[2] and ll < best[3]):
            best = res[-1]
    test = None
    if "test" in data:
        Xte, yte = data["test"][0], (data["test"][1] == classes[1]).astype(int)
        if standardize:
            Xte = sc.transform(Xte)
        test = accuracy_score(yte, best[4].predict_proba(Xte)[:, 1] > 0.5)
    return [(C, f, acc, ll) for C, f, acc, ll, _ in res], best[0], test

def main():
    a = sys.argv[1:]
    if a and a[0] == "--sklearn-child":  # the timed scikit-learn process
        db, fs, Cs, std = a[1], a[2], [float(c) for c in a[3].split(",")], a[4] == "1"
        res, C, test = sklearn_sweep(db, fs, Cs, std, 1e-4, 100)
        print(json.dumps({"C": C, "test": test, "candidates": res}))
        return
    if len(a) < 2:
        sys.exit(__doc__)
    db, fs = a[0], a[1]
    opt = {"--C": "0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3,1,3",
           "--classify": "build/classify/bottleneck-classify", "--rounds": "3"}
    std = "--standardize" in a
    reference = "--reference" in a
    i = 2
    while i < len(a):
        if a[i] in opt:
            opt[a[i]] = a[i + 1]
            i += 2
        elif a[i] in ("--standardize", "--reference"):
            i += 1
        else:
            sys.exit("bench_sweep.py: unknown option %s" % a[i])
    Cs = [float(c) for c in opt["--C"].split(",")]
    cmd_bn = [opt["--classify"], "train", "--db", db, "--features", fs, "--C", opt["--C"],
              "--quiet", "--json", "--note", "bench_sweep"] + (["--standardize"] if std else [])
    cmd_sk = ["/usr/bin/python3", os.path.abspath(__file__), "--sklearn-child", db, fs, opt["--C"],
              "1" if std else "0"]
    import resource
    t_bn, t_sk, c_bn, c_sk, m_bn, m_sk, out_bn, out_sk = [], [], [], [], [], [], None, None
    for r in range(int(opt["--rounds"])):
        for which in ("bn", "sk"):
            t = time.monotonic()
            u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            rss_file = "/tmp/bench_sweep.%d.rss" % os.getpid()
            p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] +
                               (cmd_bn if which == "bn" else cmd_sk), capture_output=True, text=True)
            with open(rss_file) as f:
                rss = int(f.read().split()[-1]) / 1024.0
            os.unlink(rss_file)
            dt = time.monotonic() - t
            u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
            with open("/proc/loadavg") as f:
                load = f.read().split()[0]
            if p.returncode != 0:
                sys.exit("bench_sweep.py: %s failed: %s" % (which, p.stderr.strip()))
            if which == "bn":
                t_bn.append(dt), c_bn.append(cpu), m_bn.append(rss)
                out_bn = json.loads(p.stdout)
            else:
                t_sk.append(dt), c_sk.append(cpu), m_sk.append(rss)
                out_sk = json.loads(p.stdout)
            print("round %d %-12s %7.3f s wall %7.3f s cpu %6.0f MB peak RSS (load average %s)"
                  % (r + 1, "bottleneck" if which == "bn" else "scikit-learn", dt, cpu, rss, load),
                  flush=True)
    med = lambda v: sorted(v)[len(v) // 2]
    # Exactness: scikit-learn run to its optimum (--reference: tol 1e-10; else
    # the timed default run), against bottleneck's reported objectives.
    if reference:
        ref, C_ref, test_ref = sklearn_sweep(db, fs, Cs, std, 1e-10, 10000)
    else:
        ref, C_ref, test_ref = out_sk["candidates"], out_sk["C"], out_sk["test"]
    cand = out_bn["candidates"]
    worst = 0.0
    print("%10s %16s %16s %9s %9s %9s" % ("C", "f scikit-learn", "f bottleneck", "(bn-sk)/sk", "acc sk",
                                          "acc bn"))
    for (C, f, acc, ll), c in zip(ref, cand):
        rel = (c["objective"] - f) / abs(f)  # < 0: bottleneck's is lower
        worst = max(worst, abs(rel))
        print("%10g %16.10g %16.10g %+9.1e %9.4f %9.4f" % (C, f, c["objective"], rel, acc,
                                                           c["metrics"]["validation"]["accuracy"]))
    chosen = next(c for c in cand if c["run"] == out_bn["chosen"])
    test_bn = out_bn["final_metrics"].get("test", {}).get("accuracy")
    print("chosen C: scikit-learn %g (default tol/max_iter: %g), bottleneck %g" % (C_ref, out_sk["C"], chosen["C"]))
    print("test accuracy: scikit-learn %s, bottleneck %s" % (test_ref, test_bn))
    print("objective: worst relative difference %.2e (scikit-learn %s)"
          % (worst, "tol 1e-10" if reference else "defaults, as timed"))
    print("RESULT dim=%d candidates=%d wall: bottleneck=%.3fs scikit-learn=%.3fs ratio=%.1f; "
          "cpu: bottleneck=%.3fs scikit-learn=%.3fs ratio=%.1f; peak RSS: bottleneck=%.0fMB "
          "scikit-learn=%.0fMB"
          % (out_bn["dim"], len(cand), med(t_bn), med(t_sk), med(t_sk) / med(t_bn),
             med(c_bn), med(c_sk), med(c_sk) / med(c_bn), max(m_bn), max(m_sk)))

if __name__ == "__main__":
    main()
