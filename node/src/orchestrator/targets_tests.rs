//! The allow-list decision, table-tested: which host, resolved to which addresses, under which
//! list, is allowed or refused and why.

use super::*;

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().expect("ip")).collect()
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Ok,
    Refused,
    NotAllowed,
    Unresolved,
}

fn verdict(r: Result<(), Refusal>) -> Verdict {
    match r {
        Ok(()) => Verdict::Ok,
        Err(Refusal::Refused { .. }) => Verdict::Refused,
        Err(Refusal::NotAllowed { .. }) => Verdict::NotAllowed,
        Err(Refusal::Unresolved { .. }) => Verdict::Unresolved,
    }
}

#[test]
fn the_allow_list_decides_by_name_and_by_every_resolved_address() {
    use Verdict::*;
    let cases: &[(&[&str], &str, &[&str], Verdict)] = &[
        // No list: anything but the refused ranges, loopback included (tests and the demo).
        (&[], "127.0.0.1", &["127.0.0.1"], Ok),
        (&[], "localhost", &["::1", "127.0.0.1"], Ok),
        (&[], "example.com", &["93.184.216.34"], Ok),
        (&[], "169.254.169.254", &["169.254.169.254"], Refused),
        (
            &[],
            "metadata.google.internal",
            &["169.254.169.254"],
            Refused,
        ),
        (
            &[],
            "::ffff:169.254.169.254",
            &["::ffff:169.254.169.254"],
            Refused,
        ),
        (&[], "fe80::1", &["fe80::1"], Refused),
        (&[], "fd00:ec2::254", &["fd00:ec2::254"], Refused),
        (&[], "fd00:ec2::253", &["fd00:ec2::253"], Ok),
        (&[], "100.100.100.200", &["100.100.100.200"], Refused),
        (&[], "168.63.129.16", &["168.63.129.16"], Refused),
        // One bad address among several refuses the host: the driver may connect to any.
        (&[], "mixed.example", &["10.0.0.1", "169.254.1.1"], Refused),
        (&[], "nothing.example", &[], Unresolved),
        // A list: the host by name, or every address by CIDR.
        (&["10.0.0.0/8"], "10.1.2.3", &["10.1.2.3"], Ok),
        (&["10.0.0.0/8"], "127.0.0.1", &["127.0.0.1"], NotAllowed),
        (
            &["10.0.0.0/8"],
            "split.example",
            &["10.0.0.1", "11.0.0.1"],
            NotAllowed,
        ),
        (&["target.example"], "TARGET.example.", &["203.0.113.9"], Ok),
        (
            &["target.example"],
            "other.example",
            &["203.0.113.9"],
            NotAllowed,
        ),
        (&["*.svc.local"], "api.ns.svc.local", &["10.96.0.5"], Ok),
        (&["*.svc.local"], "svc.local", &["10.96.0.5"], NotAllowed),
        (
            &["*.svc.local"],
            "evilsvc.local",
            &["10.96.0.5"],
            NotAllowed,
        ),
        (&["2001:db8::/32"], "2001:db8::7", &["2001:db8::7"], Ok),
        (&["0.0.0.0/0"], "anything", &["8.8.8.8"], Ok),
        // A name on the list does not open a refused range; only a CIDR listing it does.
        (
            &["metadata.google.internal"],
            "metadata.google.internal",
            &["169.254.169.254"],
            Refused,
        ),
        (
            &["169.254.0.0/16"],
            "169.254.169.254",
            &["169.254.169.254"],
            Ok,
        ),
        (
            &["169.254.169.254"],
            "169.254.169.254",
            &["169.254.169.254"],
            Ok,
        ),
        (
            &["169.254.169.254"],
            "169.254.0.9",
            &["169.254.0.9"],
            Refused,
        ),
    ];
    for (list, host, addrs, want) in cases {
        let policy = TargetPolicy::new(list).expect("list");
        let got = verdict(policy.decide(host, &ips(addrs)));
        assert_eq!(&got, want, "{list:?} {host} {addrs:?}");
    }
}

#[test]
fn refusals_say_what_the_range_is_and_how_to_allow_it() {
    let e = TargetPolicy::default()
        .decide("169.254.169.254", &ips(&["169.254.169.254"]))
        .expect_err("metadata");
    let msg = e.to_string();
    assert!(
        msg.contains("169.254.0.0/16") && msg.contains("metadata"),
        "{msg}"
    );
    assert!(msg.contains("--allow-target"), "{msg}");
    let e = TargetPolicy::new(&["10.0.0.0/8"])
        .expect("list")
        .decide("127.0.0.1", &ips(&["127.0.0.1"]))
        .expect_err("not listed");
    assert!(e.to_string().contains("allow-list"), "{e}");
}

#[test]
fn list_entries_are_parsed_or_refused_with_the_entry_named() {
    for ok in [
        "10.0.0.0/8",
        "1.2.3.4",
        "::1",
        "[fe80::1]/64",
        "target.example",
        "*.example.com",
        " spaced.example ",
    ] {
        assert!(Allowed::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "1.2.3.4/x",
        "not a host",
        "*.",
        "http://x/",
        "",
    ] {
        let e = Allowed::parse(bad).expect_err(bad);
        assert!(bad.is_empty() || e.contains(bad.trim()), "{bad}: {e}");
    }
    // Empty entries (an empty variable) are skipped, not an error.
    assert_eq!(TargetPolicy::new(&["", " "]), Ok(TargetPolicy::default()));
}

#[test]
fn cidr_membership_at_the_edges() {
    let c = Cidr::parse("192.168.0.0/23").expect("cidr");
    assert!(c.contains("192.168.1.255".parse().expect("ip")));
    assert!(!c.contains("192.168.2.0".parse().expect("ip")));
    assert!(!c.contains("::ffff:192.168.2.0".parse().expect("ip")));
    assert!(c.contains("::ffff:192.168.0.1".parse().expect("ip")));
    assert!(!c.contains("fe80::1".parse().expect("ip")));
    assert!(Cidr::parse("0.0.0.0/0")
        .expect("all")
        .contains("1.2.3.4".parse().expect("ip")));
    assert!(Cidr::parse("::/0")
        .expect("all")
        .contains("2001:db8::1".parse().expect("ip")));
}

#[tokio::test]
async fn check_resolves_names_and_refuses_what_does_not_resolve() {
    let policy = TargetPolicy::default();
    assert_eq!(policy.check("http://127.0.0.1:9/x").await, Ok(()));
    assert_eq!(policy.check("http://localhost:9/x").await, Ok(()));
    let e = policy
        .check("http://169.254.169.254/latest/meta-data/")
        .await
        .expect_err("metadata");
    assert_eq!(e.field, "target_url");
    let e = policy
        .check("http://no-such-host.invalid/")
        .await
        .expect_err("unresolvable");
    assert_eq!(e.field, "target_url");
    assert!(e.message.contains("cannot be resolved"), "{e}");
}
