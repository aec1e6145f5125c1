//! A container's own filesystem: its writable root with `/tmp`, fresh for
//! each run and read-only when asked.

use crate::support::*;

/// Runs the pod of `image` to its end, which must be success.
async fn succeeded(f: &Fixture, image: &str, yaml: &str) -> Watched {
    let (w, status) = f.run(yaml).await;
    assert_eq!(
        status.phase,
        wasipod::status::PodPhase::Succeeded,
        "{image}"
    );
    w
}

#[tokio::test]
async fn each_container_writes_its_own_root_and_paths_outside_it_do_not_exist() {
    let f = Fixture::new();
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: root}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: a\n    image: {image}\n    args: [sh, write /tmp/scratch from-a; cat /tmp/scratch; echo; write /notes.txt top; cat notes.txt; echo; try-read /usr/lib/none; try-read /b-was-here; ls /]\n  - name: b\n    image: {image}\n    args: [sh, write /b-was-here yes; try-read /tmp/scratch; try-read /notes.txt]\n"
        );
        let w = succeeded(&f, image, &yaml).await;
        let a = w.log("a");
        assert!(a.contains("from-a\n"), "{image}: /tmp is writable: {a}");
        assert!(
            a.contains("top\n"),
            "{image}: relative paths resolve in / (the working directory): {a}"
        );
        assert!(
            a.contains("read /usr/lib/none: error NotFound"),
            "{image}: a path outside the mounts does not exist: {a}"
        );
        assert!(
            a.contains("read /b-was-here: error NotFound"),
            "{image}: another container's root is not this one's: {a}"
        );
        let listing: Vec<&str> = a
            .lines()
            .skip_while(|l| !l.starts_with("read /b"))
            .skip(1)
            .collect();
        assert!(
            listing.contains(&"tmp") && listing.contains(&"notes.txt"),
            "{image}: {a}"
        );
        let b = w.log("b");
        assert!(
            b.contains("read /tmp/scratch: error NotFound"),
            "{image}: {b}"
        );
        assert!(
            b.contains("read /notes.txt: error NotFound"),
            "{image}: {b}"
        );
        // The roots were folders of the pod; its deletion took them (the
        // pod's folder and logs are kept by the fixture).
        let dir = w.pod.dir().to_path_buf();
        assert!(dir.join("a").join("0.log").exists());
        w.pod.delete(None).await;
        eventually("the roots are removed", || {
            !dir.join("a/root").exists() && !dir.join("b/root").exists()
        })
        .await;
    }
}

#[tokio::test]
async fn a_restarted_container_starts_from_a_fresh_root() {
    let f = Fixture::new();
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: fresh}}\nspec:\n  restartPolicy: OnFailure\n  volumes: [{{name: v, emptyDir: {{}}}}]\n  containers:\n  - name: c\n    image: {image}\n    args: [sh, try-read /tmp/mark; write /tmp/mark run; fail-until /data/runs 2]\n    volumeMounts: [{{name: v, mountPath: /data}}]\n"
        );
        let w = succeeded(&f, image, &yaml).await;
        assert_eq!(
            w.pod.status().container("c").unwrap().restart_count,
            1,
            "{image}"
        );
        let log = w.log("c");
        assert!(
            log.contains("read /tmp/mark: error NotFound"),
            "{image}: the second run does not see the first run's /tmp: {log}"
        );
        let previous = String::from_utf8_lossy(
            &w.pod
                .logs(&wasipod::LogOptions {
                    previous: true,
                    ..wasipod::LogOptions::container("c")
                })
                .unwrap(),
        )
        .into_owned();
        assert!(
            previous.contains("read /tmp/mark: error NotFound"),
            "{image}: {previous}"
        );
        w.pod.delete(None).await;
    }
}

#[tokio::test]
async fn read_only_root_filesystem_refuses_writes_outside_writable_mounts() {
    let f = Fixture::new();
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: ro}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: v, emptyDir: {{}}}}]\n  containers:\n  - name: c\n    image: {image}\n    args: [sh, try-write /tmp/x; try-write /y; try-write /data/z; try-read /data/z]\n    securityContext: {{readOnlyRootFilesystem: true}}\n    volumeMounts: [{{name: v, mountPath: /data}}]\n  - name: w\n    image: {image}\n    args: [sh, try-write /tmp/x]\n    securityContext: {{readOnlyRootFilesystem: false}}\n"
        );
        let (w, _) = f.run(&yaml).await;
        let log = w.log("c");
        for path in ["/tmp/x", "/y"] {
            let line = log
                .lines()
                .find(|l| l.starts_with(&format!("write {path}:")))
                .unwrap_or_else(|| panic!("{image}: {log}"));
            assert!(line.contains(": error "), "{image}: {line}");
        }
        assert!(log.contains("write /data/z: ok"), "{image}: {log}");
        assert!(log.contains("read /data/z: ok 1 bytes"), "{image}: {log}");
        assert!(w.log("w").contains("write /tmp/x: ok"), "{image}");
        w.pod.delete(None).await;
    }
}

#[tokio::test]
async fn a_working_dir_in_the_root_is_created_and_tmp_stays_the_roots() {
    let f = Fixture::new();
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: wd}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: {image}\n    workingDir: /srv/app\n    args: [sh, write rel.txt here; cat /srv/app/rel.txt; echo; write /tmp/t in-tmp; cat /tmp/t; echo; ls /tmp]\n"
        );
        let w = succeeded(&f, image, &yaml).await;
        let log = w.log("c");
        assert!(log.contains("here\n"), "{image}: {log}");
        assert!(
            log.contains("in-tmp\nt\n"),
            "{image}: /tmp lists only t: {log}"
        );
        w.pod.delete(None).await;
    }
}

#[tokio::test]
async fn dev_and_etc_hold_what_a_container_expects_without_host_devices() {
    let f = Fixture::new();
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: devices}}\nspec:\n  restartPolicy: Never\n  hostname: web-0\n  containers:\n  - name: c\n    image: {image}\n    args: [sh, try-read /dev/null; try-write /dev/null; append /dev/null more; read-bytes /dev/zero 100000; read-bytes /dev/urandom 4096; read-bytes /dev/random 4096; read-bytes /dev/full 10; try-write /dev/full; write /dev/zero discarded; stat /dev/null; stat /etc/hostname; cat /etc/hostname; cat /etc/hosts; try-write /etc/hosts; try-write /dev/new; ls /dev; ls /etc]\n"
        );
        let w = succeeded(&f, image, &yaml).await;
        let log = w.log("c");
        let has = |s: &str| assert!(log.contains(s), "{image}: no {s:?} in:\n{log}");
        has("read /dev/null: ok 0 bytes");
        has("write /dev/null: ok");
        has("read-bytes /dev/zero: 100000 bytes, 100000 zero, 1 distinct");
        has("read-bytes /dev/full: 10 bytes, 10 zero");
        // wasi-libc's wasip2 reports every failed stream write as EIO.
        has(if image.ends_with("p1.wasm") {
            "write /dev/full: error StorageFull"
        } else {
            "write /dev/full: error "
        });
        has("stat /dev/null: other 0");
        has("stat /etc/hostname: file 6");
        has("web-0\n# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n");
        has(&format!("{}\tweb-0\n", w.pod.sandbox().ip()));
        has("dev/new: error");
        has("full\nnull\nrandom\ntermination-log\nurandom\nzero\nhostname\nhosts\n");
        let write_hosts = log
            .lines()
            .find(|l| l.starts_with("write /etc/hosts:"))
            .unwrap();
        assert!(write_hosts.contains(": error "), "{image}: {write_hosts}");
        for dev in ["/dev/urandom", "/dev/random"] {
            let line = log
                .lines()
                .find(|l| l.starts_with(&format!("read-bytes {dev}:")))
                .unwrap();
            let distinct: usize = line
                .split(", ")
                .last()
                .and_then(|d| d.split(' ').next())
                .and_then(|d| d.parse().ok())
                .unwrap();
            // 4096 random bytes miss a given value with probability e^-16.
            assert!(distinct > 240, "{image}: {line}");
        }
        w.pod.delete(None).await;
    }
    // The placeholders behind /dev and /etc stayed empty.
    let synthetic = f.runtime.node().state_dir().join("synthetic");
    for file in [
        "dev/null",
        "dev/zero",
        "dev/full",
        "etc/hosts",
        "etc/hostname",
    ] {
        let len = std::fs::metadata(synthetic.join(file)).unwrap().len();
        assert_eq!(len, 0, "{file}");
    }
    assert!(!synthetic.join("dev/new").exists());
}
