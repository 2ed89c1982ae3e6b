//! A private PKI for the TLS tests, made with the `openssl` CLI (scripts/test.sh installs it): a CA,
//! server and client certificates signed by it, a second CA with its own client, and an expired client.

use super::run_ok;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of one test PKI (all PEM, in a temp dir kept alive by `dir`).
pub struct Pki {
    pub dir: tempfile::TempDir,
}

/// A certificate and its key.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl() -> Command {
    Command::new("openssl")
}

impl Pki {
    /// A CA named `Test CA` in a new temp dir.
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::Builder::new()
                .prefix("lpc-pki")
                .tempdir()
                .unwrap(),
        };
        pki.ca("ca", "LPC Test CA");
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate `ca.pem` (the one [`Pki::new`] made).
    pub fn ca_cert(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// Makes another self-signed CA `NAME.pem` / `NAME.key`.
    pub fn ca(&self, name: &str, cn: &str) -> Pair {
        let p = Pair {
            cert: self.path(&format!("{name}.pem")),
            key: self.path(&format!("{name}.key")),
        };
        run_ok(
            openssl()
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ])
                .args(["-nodes", "-days", "30", "-subj", &format!("/CN={cn}")])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&p.key)
                .arg("-out")
                .arg(&p.cert),
        );
        p
    }

    /// A leaf `NAME.pem` / `NAME.key` signed by CA `ca` (e.g. "ca"), with subject CN `cn`, the SANs
    /// given (e.g. "DNS:localhost,IP:127.0.0.1"), for `server` or client use; `days` negative makes
    /// it expired (valid from 3 days ago until yesterday).
    pub fn leaf(
        &self,
        ca: &str,
        name: &str,
        cn: &str,
        sans: &str,
        server: bool,
        days: i32,
    ) -> Pair {
        let p = Pair {
            cert: self.path(&format!("{name}.pem")),
            key: self.path(&format!("{name}.key")),
        };
        let csr = self.path(&format!("{name}.csr"));
        run_ok(
            openssl()
                .args([
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ])
                .args(["-nodes", "-subj", &format!("/CN={cn}")])
                .arg("-keyout")
                .arg(&p.key)
                .arg("-out")
                .arg(&csr),
        );
        let ext = self.path(&format!("{name}.ext"));
        let usage = if server { "serverAuth" } else { "clientAuth" };
        let mut text = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
        );
        if !sans.is_empty() {
            text.push_str(&format!("subjectAltName={sans}\n"));
        }
        std::fs::write(&ext, text).unwrap();
        let mut cmd = openssl();
        cmd.args(["x509", "-req", "-sha256"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(self.path(&format!("{ca}.pem")))
            .arg("-CAkey")
            .arg(self.path(&format!("{ca}.key")))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&p.cert);
        if days > 0 {
            cmd.args(["-days", &days.to_string()]);
            run_ok(&mut cmd);
        } else {
            // OpenSSL 3.0's x509 has no -not_before/-not_after: sign with a fake clock instead.
            let expired = self.expired_with_ca(&csr, ca, &ext, &p.cert);
            assert!(expired, "could not make an expired certificate");
        }
        p
    }

    /// Signs through `openssl ca`, which takes explicit start and end dates.
    fn expired_with_ca(&self, csr: &Path, ca: &str, ext: &Path, out: &Path) -> bool {
        let db = self.path("ca-db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("index.txt"), "").unwrap();
        std::fs::write(db.join("serial"), "1000\n").unwrap();
        let conf = db.join("ca.cnf");
        std::fs::write(
            &conf,
            format!(
                "[ca]\ndefault_ca=d\n[d]\ndir={dir}\ndatabase=$dir/index.txt\nserial=$dir/serial\n\
                 new_certs_dir=$dir\ncertificate={cert}\nprivate_key={key}\ndefault_md=sha256\n\
                 policy=p\nunique_subject=no\ncopy_extensions=none\n[p]\ncommonName=supplied\n",
                dir = db.display(),
                cert = self.path(&format!("{ca}.pem")).display(),
                key = self.path(&format!("{ca}.key")).display(),
            ),
        )
        .unwrap();
        let start = (chrono::Utc::now() - chrono::Duration::days(3)).format("%Y%m%d%H%M%SZ");
        let end = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y%m%d%H%M%SZ");
        run_ok(
            openssl()
                .args(["ca", "-batch", "-notext", "-config"])
                .arg(&conf)
                .args([
                    "-startdate",
                    &start.to_string(),
                    "-enddate",
                    &end.to_string(),
                ])
                .arg("-extfile")
                .arg(ext)
                .arg("-in")
                .arg(csr)
                .arg("-out")
                .arg(out),
        );
        out.exists()
    }

    /// SHA-256 fingerprint of a PEM certificate, uppercase hex without colons.
    pub fn fingerprint(cert: &Path) -> String {
        let out = run_ok(
            openssl()
                .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
                .arg(cert),
        );
        out.trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_uppercase()
    }
}
