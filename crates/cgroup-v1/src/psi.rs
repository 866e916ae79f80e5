//! Pressure stall information on hybrid hosts, from the cgroup's unified-hierarchy twin.
//!
//! cgroup v1 has no per-cgroup PSI, but on a hybrid host isol also creates the cgroup in
//! the unified hierarchy and attaches every task there, and cgroup2 keeps
//! `cpu.pressure`, `memory.pressure` and `io.pressure` for every cgroup whether or not
//! controllers are enabled (Documentation/accounting/psi.rst, "Cgroup2 interface").
//! The files are missing without CONFIG_PSI and fail with EOPNOTSUPP under `psi=0`;
//! both mean "no PSI" rather than an error.

use std::path::Path;

use isol_ns_core::stats::{Pressure, PressureLine, PsiStats};
use isol_ns_core::{parse, Error, Result};

/// Reads the three pressure files of `dir`; `None` when the kernel offers none.
pub fn read(dir: &Path) -> Result<Option<PsiStats>> {
    let psi = PsiStats {
        cpu: file(dir, "cpu.pressure")?,
        memory: file(dir, "memory.pressure")?,
        io: file(dir, "io.pressure")?,
    };
    Ok((psi.cpu.is_some() || psi.memory.is_some() || psi.io.is_some()).then_some(psi))
}

fn file(dir: &Path, name: &str) -> Result<Option<Pressure>> {
    let path = dir.join(name);
    let text = match parse::read(&path) {
        Ok(t) => t,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EOPNOTSUPP)) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    parse_pressure(&path, &text).map(Some)
}

/// Parses a pressure file: a `some` line and, except for cpu on older kernels, `full`.
pub fn parse_pressure(path: &Path, text: &str) -> Result<Pressure> {
    let lines = parse::nested_keyed(path, text)?;
    let line = |key: &str| -> Result<Option<PressureLine>> {
        let Some(l) = lines.iter().find(|l| l.key == key) else {
            return Ok(None);
        };
        let f = |sub: &str| {
            l.f64(sub)
                .ok_or_else(|| Error::parse(path, format!("{key} line has no number {sub}=")))
        };
        Ok(Some(PressureLine {
            avg10: f("avg10")?,
            avg60: f("avg60")?,
            avg300: f("avg300")?,
            total: l
                .u64("total")
                .ok_or_else(|| Error::parse(path, format!("{key} line has no total=")))?,
        }))
    };
    Ok(Pressure {
        some: line("some")?.ok_or_else(|| Error::parse(path, "no \"some\" line"))?,
        full: line("full")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn reads_what_exists() {
        let t = FakeTree::new();
        assert_eq!(read(t.path()).unwrap(), None);
        t.file("cpu.pressure", "some avg10=98.47 avg60=97.22 avg300=73.34 total=472090834\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        t.file(
            "memory.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=66857\n",
        );
        let psi = read(t.path()).unwrap().unwrap();
        let cpu = psi.cpu.unwrap();
        assert_eq!((cpu.some.avg10, cpu.some.total), (98.47, 472_090_834));
        assert_eq!(cpu.full.unwrap().total, 0);
        assert!(psi.memory.unwrap().full.is_none());
        assert!(psi.io.is_none());
    }

    #[test]
    fn odd_content_is_an_error_naming_the_file() {
        let t = FakeTree::new();
        t.file(
            "io.pressure",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        );
        assert!(read(t.path())
            .unwrap_err()
            .to_string()
            .contains("io.pressure"));
        t.file(
            "io.pressure",
            "some avg10=x avg60=0.00 avg300=0.00 total=0\n",
        );
        assert!(read(t.path()).unwrap_err().to_string().contains("avg10"));
    }
}
