//! Docker's default seccomp filter for docker's default capabilities, stored as
//! [`super::layout`] lays it out, so that the default box does not compile it at each
//! spawn. The test `stored_filter_is_current` fails when the compiler's output differs
//! from what is stored here; `ISOL_BLESS=1 cargo test -p isol-ns-core stored_filter`
//! writes it again.

use seccompiler::{sock_filter, BpfProgram};

/// The filter for [`CapSet::docker_default`](crate::security::CapSet::docker_default) on
/// this architecture, when one is stored for it.
pub(crate) fn docker_default() -> Option<BpfProgram> {
    let stored: &[(u16, u8, u8, u32)] = if cfg!(target_arch = "x86_64") {
        &X86_64
    } else {
        return None;
    };
    Some(
        stored
            .iter()
            .map(|&(code, jt, jf, k)| sock_filter { code, jt, jf, k })
            .collect(),
    )
}

/// `(code, jt, jf, k)` per instruction.
#[rustfmt::skip]
const X86_64: [(u16, u8, u8, u32); 99] = [
    (0x0020, 0, 0, 0x00000004), (0x0015, 1, 0, 0xc000003e), (0x0006, 0, 0, 0x80000000), (0x0020, 0, 0, 0x00000000),
    (0x0045, 0, 1, 0x40000000), (0x0006, 0, 0, 0x00050001), (0x0035, 66, 0, 0x000000f6), (0x0035, 48, 0, 0x00000086),
    (0x0035, 45, 0, 0x00000039), (0x0035, 8, 0, 0x00000011), (0x0035, 0, 85, 0x00000010), (0x0020, 0, 0, 0x00000018),
    (0x0015, 0, 1, 0x00005412), (0x0006, 0, 0, 0x00050001), (0x0020, 0, 0, 0x00000018), (0x0015, 0, 1, 0x0000541c),
    (0x0006, 0, 0, 0x00050001), (0x0006, 0, 0, 0x7fff0000), (0x0035, 0, 77, 0x00000029), (0x0035, 4, 0, 0x0000002a),
    (0x0020, 0, 0, 0x00000010), (0x0015, 0, 1, 0x00000028), (0x0006, 0, 0, 0x00050001), (0x0006, 0, 0, 0x7fff0000),
    (0x0035, 0, 71, 0x00000038), (0x0020, 0, 0, 0x00000010), (0x0054, 0, 0, 0x00020000), (0x0015, 0, 1, 0x00020000),
    (0x0006, 0, 0, 0x00050001), (0x0020, 0, 0, 0x00000010), (0x0054, 0, 0, 0x04000000), (0x0015, 0, 1, 0x04000000),
    (0x0006, 0, 0, 0x00050001), (0x0020, 0, 0, 0x00000010), (0x0054, 0, 0, 0x08000000), (0x0015, 0, 1, 0x08000000),
    (0x0006, 0, 0, 0x00050001), (0x0020, 0, 0, 0x00000010), (0x0054, 0, 0, 0x10000000), (0x0015, 0, 1, 0x10000000),
    (0x0006, 0, 0, 0x00050001), (0x0020, 0, 0, 0x00000010), (0x0054, 0, 0, 0x20000000), (0x0015, 0, 1, 0x20000000),
    (0x0006, 0, 0, 0x00050001), (0x0020, 0, 0, 0x00000010), (0x0054, 0, 0, 0x40000000), (0x0015, 0, 1, 0x40000000),
    (0x0006, 0, 0, 0x00050001), (0x0020, 0, 0, 0x00000010), (0x0054, 0, 0, 0x02000000), (0x0015, 0, 1, 0x02000000),
    (0x0006, 0, 0, 0x00050001), (0x0006, 0, 0, 0x7fff0000), (0x0035, 0, 41, 0x00000067), (0x0035, 40, 41, 0x00000068),
    (0x0035, 12, 0, 0x000000b5), (0x0035, 6, 0, 0x0000009d), (0x0035, 4, 0, 0x0000008c), (0x0035, 2, 0, 0x00000089),
    (0x0035, 0, 36, 0x00000087), (0x0035, 35, 34, 0x00000088), (0x0035, 34, 33, 0x0000008b), (0x0035, 33, 32, 0x0000009b),
    (0x0035, 3, 0, 0x000000aa), (0x0035, 31, 0, 0x000000a3), (0x0035, 29, 0, 0x000000a0), (0x0035, 29, 28, 0x0000009f),
    (0x0035, 28, 27, 0x000000ac), (0x0035, 1, 0, 0x000000d5), (0x0035, 26, 25, 0x000000d4), (0x0035, 24, 0, 0x000000e4),
    (0x0035, 24, 23, 0x000000e3), (0x0035, 16, 0, 0x00000144), (0x0035, 4, 0, 0x00000111), (0x0035, 2, 0, 0x000000fb),
    (0x0035, 20, 0, 0x000000f8), (0x0035, 18, 19, 0x000000f7), (0x0035, 18, 17, 0x00000110), (0x0035, 0, 16, 0x0000012a),
    (0x0035, 5, 0, 0x00000138), (0x0035, 2, 0, 0x00000132), (0x0035, 14, 0, 0x0000012f), (0x0035, 12, 13, 0x0000012b),
    (0x0035, 11, 0, 0x00000135), (0x0035, 11, 10, 0x00000134), (0x0035, 1, 0, 0x00000140), (0x0035, 8, 9, 0x0000013a),
    (0x0035, 0, 8, 0x00000142), (0x0035, 7, 6, 0x00000143), (0x0035, 0, 5, 0x000001a9), (0x0035, 4, 0, 0x000001bc),
    (0x0035, 0, 4, 0x000001b2), (0x0035, 1, 0, 0x000001b4), (0x0035, 3, 1, 0x000001b3), (0x0035, 1, 0, 0x000001ba),
    (0x0006, 0, 0, 0x7fff0000), (0x0006, 0, 0, 0x00050001), (0x0006, 0, 0, 0x00050026),
];

#[cfg(test)]
mod tests {
    use super::super::{default, layout};
    use crate::security::caps::CapSet;
    use seccompiler::SeccompAction;

    /// What the compiler makes now, as the source of [`super::X86_64`].
    fn render(prog: &[seccompiler::sock_filter]) -> String {
        let mut s = format!("const X86_64: [(u16, u8, u8, u32); {}] = [\n", prog.len());
        for chunk in prog.chunks(4) {
            s.push_str("   ");
            for i in chunk {
                s.push_str(&format!(
                    " ({:#06x}, {}, {}, {:#010x}),",
                    i.code, i.jt, i.jf, i.k
                ));
            }
            s.push('\n');
        }
        s.push_str("];\n");
        s
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn stored_filter_is_current() {
        let made = layout::filter(
            SeccompAction::Allow,
            &default::rules(CapSet::docker_default()).unwrap(),
        )
        .unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/security/seccomp/stored_filter.rs"
        );
        if std::env::var_os("ISOL_BLESS").is_some() {
            let src = std::fs::read_to_string(path).unwrap();
            let start = src.find("const X86_64:").unwrap();
            let end = start + src[start..].find("];\n").unwrap() + 3;
            let new = format!("{}{}{}", &src[..start], render(&made), &src[end..]);
            std::fs::write(path, new).unwrap();
            return;
        }
        assert_eq!(
            super::docker_default().unwrap(),
            made,
            "the stored filter is out of date: run ISOL_BLESS=1 cargo test -p isol-ns-core stored_filter"
        );
    }
}
