//! Pressure stall information: `cpu.pressure`, `memory.pressure`, `io.pressure`
//! (cgroup-v2.rst, "Core Interface Files" / PSI; Documentation/accounting/psi.rst).
//! The files are missing without CONFIG_PSI and unreadable (EOPNOTSUPP) with `psi=0`;
//! both read as absent. Older kernels have no `full` line in `cpu.pressure`.

use std::path::Path;

use isol_ns_core::stats::{Pressure, PressureLine, PsiStats};
use isol_ns_core::{parse, Error, Result};

/// The three pressure files of `dir`, or `None` when the kernel has none of them.
pub fn read(dir: &Path) -> Result<Option<PsiStats>> {
    let psi = PsiStats {
        cpu: file(dir, "cpu.pressure")?,
        memory: file(dir, "memory.pressure")?,
        io: file(dir, "io.pressure")?,
    };
    Ok(
        if psi.cpu.is_none() && psi.memory.is_none() && psi.io.is_none() {
            None
        } else {
            Some(psi)
        },
    )
}

fn file(dir: &Path, name: &str) -> Result<Option<Pressure>> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::EOPNOTSUPP) =>
        {
            return Ok(None)
        }
        Err(source) => return Err(Error::Read { path, source }),
    };
    let lines = parse::nested_keyed(&path, &text)?;
    let line = |key: &str| -> Result<Option<PressureLine>> {
        let Some(l) = lines.iter().find(|l| l.key == key) else {
            return Ok(None);
        };
        let f = |k: &str| {
            l.f64(k)
                .ok_or_else(|| Error::parse(&path, format!("{key} line has no numeric {k}")))
        };
        Ok(Some(PressureLine {
            avg10: f("avg10")?,
            avg60: f("avg60")?,
            avg300: f("avg300")?,
            total: l
                .u64("total")
                .ok_or_else(|| Error::parse(&path, format!("{key} line has no numeric total")))?,
        }))
    };
    let some = line("some")?.ok_or_else(|| Error::parse(&path, "no \"some\" line"))?;
    Ok(Some(Pressure {
        some,
        full: line("full")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn reads_some_and_optional_full() {
        let t = FakeTree::new();
        t.file(
            "cpu.pressure",
            "some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\n",
        );
        t.file(
            "memory.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
        );
        let psi = read(t.path()).unwrap().unwrap();
        let cpu = psi.cpu.unwrap();
        assert_eq!((cpu.some.avg10, cpu.some.total), (1.5, 12345));
        assert!(cpu.full.is_none(), "no full line in this cpu.pressure");
        assert_eq!(psi.memory.unwrap().full.unwrap().total, 3);
        assert!(psi.io.is_none());
    }

    #[test]
    fn absent_or_broken() {
        let t = FakeTree::new();
        assert!(read(t.path()).unwrap().is_none());
        t.file(
            "io.pressure",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
        );
        assert!(read(t.path())
            .unwrap_err()
            .to_string()
            .contains("no \"some\" line"));
        t.file(
            "io.pressure",
            "some avg10=x avg60=0.00 avg300=0.00 total=3\n",
        );
        assert!(read(t.path()).unwrap_err().to_string().contains("avg10"));
    }
}
