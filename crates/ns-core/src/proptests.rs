//! Property tests for every parser that takes input from people or from the kernel: no
//! input makes one panic, every refusal names the field and quotes the input, and what
//! isol prints it parses back to the same value.

use proptest::prelude::*;

use crate::parse;
use crate::resources::{DeviceRule, IoDeviceLimit};
use crate::units::{format_size, parse_cpus, parse_size, CpuList, Limit};
use crate::{NamespaceKind, NamespaceSet, Resources};

fn fixture() -> &'static std::path::Path {
    std::path::Path::new("fuzz")
}

/// Strings that look like what people type: digits, dots, unit letters, separators.
fn humanish() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9.kKmMgGtTpPbBiIxX,:=\\- a-z*]{0,24}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn sizes_never_panic_and_errors_name_the_input(s in prop_oneof![humanish(), any::<String>()]) {
        match parse_size("memory", &s) {
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("memory: "), "{}", msg);
                if !s.trim().is_empty() {
                    prop_assert!(msg.contains(&format!("{s:?}")) || msg.contains(&format!("{:?}", s.trim())), "{}", msg);
                }
            }
        }
    }

    #[test]
    fn sizes_round_trip(v in any::<u64>(), shift in prop::sample::select(vec![(0u32, ""), (10, "K"), (20, "M"), (30, "G"), (40, "T")])) {
        prop_assert_eq!(parse_size("m", &v.to_string()).unwrap(), Limit::Value(v));
        let (bits, unit) = shift;
        let n = v >> (bits + 1);
        prop_assert_eq!(parse_size("m", &format!("{n}{unit}")).unwrap(), Limit::Value(n << bits));
        // What isol prints parses back to within a tenth of the unit it printed.
        let shown = parse_size("m", &format_size(v)).unwrap().value().unwrap();
        prop_assert!(shown <= v && v - shown <= v / 10 + 1, "{} -> {} -> {}", v, format_size(v), shown);
    }

    #[test]
    fn cpus_never_panic(s in prop_oneof![humanish(), any::<String>()]) {
        if let Err(e) = parse_cpus("cpus", &s) {
            prop_assert!(e.to_string().starts_with("cpus: "));
        }
    }

    #[test]
    fn cpu_lists_round_trip(set in proptest::collection::btree_set(0u32..512, 0..40)) {
        let list: CpuList = set.iter().copied().collect();
        let back = CpuList::parse("cpuset.cpus", &list.to_string()).unwrap();
        prop_assert_eq!(back, list);
    }

    #[test]
    fn cpu_lists_never_panic(s in prop_oneof![humanish(), any::<String>()]) {
        if let Err(e) = CpuList::parse("cpuset.cpus", &s) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("cpuset.cpus: ") && msg.contains(&format!("{s:?}")), "{}", msg);
        }
    }

    #[test]
    fn namespace_sets_round_trip(bits in any::<u8>()) {
        let set: NamespaceSet = NamespaceKind::ALL.iter().copied().enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0).map(|(_, k)| k).collect();
        prop_assert_eq!(set.to_string().parse::<NamespaceSet>().unwrap(), set);
    }

    #[test]
    fn namespace_lists_never_panic(s in prop_oneof!["[a-z,]{0,30}", any::<String>()]) {
        if let Err(e) = s.parse::<NamespaceSet>() {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("namespaces: ") && msg.contains(&format!("{s:?}")), "{}", msg);
        }
    }

    #[test]
    fn resources_and_rules_never_panic(s in any::<String>(), io in humanish(), dev in "[abcx] [0-9*]{0,3}:[0-9*]{0,3} [rwmx]{0,4}") {
        let _ = serde_json::from_str::<Resources>(&s);
        if let Err(e) = IoDeviceLimit::parse(&io) {
            prop_assert!(e.to_string().starts_with("io-max"), "{}", e);
        }
        if let Err(e) = dev.parse::<DeviceRule>() {
            prop_assert!(e.to_string().starts_with("devices: "), "{}", e);
        }
    }

    #[test]
    fn resources_json_round_trips(weight in 1u64..=10_000, mem in any::<u64>(), pids in prop::option::of(0u64..100_000)) {
        let mut r = Resources::default();
        r.cpu.weight = Some(weight);
        r.memory.max = Some(Limit::Value(mem));
        r.pids.max = pids.map(Limit::Value);
        r.validate().unwrap();
        let back: Resources = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn kernel_file_parsers_never_panic(s in any::<String>()) {
        let p = fixture();
        let _ = parse::single_u64(p, &s);
        let _ = parse::single_limit(p, &s);
        let _ = parse::flat_keyed(p, &s);
        let _ = parse::nested_keyed(p, &s);
        let _ = parse::proc_cgroup(p, &s);
        let _ = parse::mountinfo(p, &s);
    }

    #[test]
    fn mountinfo_lines_with_escapes_parse(point in "/[a-z \\\\]{1,20}", fs in "[a-z0-9]{1,8}") {
        let escaped = point.replace('\\', "\\134").replace(' ', "\\040");
        let line = format!("30 22 0:26 / {escaped} rw,relatime shared:4 - {fs} src rw\n");
        let m = parse::mountinfo(fixture(), &line).unwrap();
        prop_assert_eq!(m[0].mount_point.to_str().unwrap(), point.as_str());
        prop_assert_eq!(&m[0].fs_type, &fs);
    }
}
