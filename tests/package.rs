//! The Debian package built by `cargo deb` (scripts/test.sh builds it and sets LPC_DEB): `dpkg -i`
//! installs the binary, the units and the config as a conffile, creates the system user and enables the
//! units; the installed binary validates the installed config; `dpkg -r` removes it and keeps the config,
//! as Debian does; `dpkg -P` then removes the config too.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

fn dpkg_status() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", "log-panel-collector"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Ignored by a plain `cargo test`, so that a run without the package shows it as skipped;
/// scripts/test.sh runs it (`--ignored`) after building the package, unless LPC_SKIP_PACKAGE=1.
#[test]
#[ignore = "needs the Debian package: scripts/test.sh builds it and runs this test"]
fn debian_package_installs_validates_and_removes() {
    let Some(deb) = std::env::var_os("LPC_DEB") else {
        panic!("LPC_DEB is not set: scripts/test.sh builds the package with cargo deb and sets it");
    };
    assert!(Path::new(&deb).exists(), "{deb:?} is missing");
    let _ = Command::new("dpkg")
        .args(["-P", "log-panel-collector"])
        .output();

    let out = run_ok(Command::new("dpkg").arg("-i").arg(&deb));
    assert_eq!(dpkg_status(), "ii", "installed: {out}");
    let bin = Path::new("/usr/bin/log-panel-collector");
    let conf = Path::new("/etc/log-panel-collector/config.toml");
    assert!(bin.exists() && conf.exists());
    let out = run_ok(Command::new(bin).args(["validate", "--config"]).arg(conf));
    assert!(out.contains("config OK"), "{out}");
    let conffiles =
        run_ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "log-panel-collector"]));
    assert!(
        conffiles.contains("/etc/log-panel-collector/config.toml"),
        "a conffile: {conffiles}"
    );

    // The system user, and the config readable by its group only.
    let user = run_ok(Command::new("getent").args(["passwd", "log-panel-collector"]));
    assert!(user.contains("/var/lib/log-panel-collector"), "{user}");
    let stat = run_ok(Command::new("stat").args(["-c", "%a %G"]).arg(conf));
    assert_eq!(stat.trim(), "640 log-panel-collector");

    // Units installed and enabled the Debian way (deb-systemd-helper links, even without systemd running).
    let unit_dir = ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .into_iter()
        .find(|d| Path::new(d).join("log-panel-collector.service").exists())
        .expect("the service unit is installed");
    assert!(
        Path::new(unit_dir)
            .join("log-panel-collector.socket")
            .exists()
    );
    let enabled = |link: &str| Path::new("/etc/systemd/system").join(link).exists();
    // The optional syslog-over-TLS socket ships, off by default.
    assert!(
        Path::new("/lib/systemd/system/log-panel-collector-tls.socket").exists()
            || Path::new("/usr/lib/systemd/system/log-panel-collector-tls.socket").exists()
    );
    assert!(
        !enabled("sockets.target.wants/log-panel-collector-tls.socket"),
        "the TLS socket is not enabled by default"
    );
    assert!(
        enabled("multi-user.target.wants/log-panel-collector.service"),
        "service enabled"
    );
    assert!(
        enabled("sockets.target.wants/log-panel-collector.socket"),
        "socket enabled"
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(Path::new(unit_dir).join("log-panel-collector.service"))
        .arg(Path::new(unit_dir).join("log-panel-collector.socket"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The forwarding snippets ship with the docs.
    assert!(Path::new("/usr/share/doc/log-panel-collector/examples/rsyslog.conf").exists());
    // The UDP receive-buffer cap ships as a sysctl.d file, which postinst applied.
    let sysctl = std::fs::read_to_string("/usr/lib/sysctl.d/60-log-panel-collector.conf")
        .expect("the sysctl.d file is installed");
    assert!(sysctl.contains("net.core.rmem_max = 33554432"), "{sysctl}");
    let rmem_max: u64 = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .expect("rmem_max")
        .trim()
        .parse()
        .expect("a number");
    assert!(
        rmem_max >= 33554432,
        "postinst did not apply it: rmem_max = {rmem_max}"
    );

    // Remove: binary and units gone, config kept; purge: config gone.
    run_ok(Command::new("dpkg").args(["-r", "log-panel-collector"]));
    assert_eq!(dpkg_status(), "rc", "removed, config files kept");
    assert!(!bin.exists());
    assert!(conf.exists(), "dpkg -r keeps the conffile");
    assert!(
        !Path::new(unit_dir)
            .join("log-panel-collector.service")
            .exists()
    );
    run_ok(Command::new("dpkg").args(["-P", "log-panel-collector"]));
    assert!(!conf.exists(), "dpkg -P removes it");
    assert_eq!(dpkg_status(), "", "purged");
}
