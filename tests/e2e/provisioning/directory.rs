//! The LDAP provisioner's other ways in (issue 14): `ldaps://` and
//! StartTLS against a slapd whose certificate comes from a CA the test
//! makes (and is refused from a CA the provisioner does not trust), users
//! found by `user-search-base` + `user-filter` (the subject filter-escaped,
//! RFC 4515), and `groupOfUniqueNames` through `member-attribute`.

use super::*;
use jitgate_tests::slapd::make_ca;

const PEOPLE: &str = "ou=people,dc=example,dc=org";

/// A provisioner `ad` at `url` granting `group`; `keys` are the user
/// lookup and anything else the test sets.
fn directory_setup(b: Backend, url: &str, group: &str, keys: &str) -> Setup {
    Setup::with_env(
        b,
        &format!(
            "[[provisioners]]\nname = \"ad\"\nkind = \"ldap\"\nurl = \"{url}\"\nbind-dn = \"{ADMIN_DN}\"\n\
             password-env = \"LDAP_PASSWORD\"\nretry-ms = 100\n{keys}\n\
             [[entitlements]]\nname = \"operator\"\nprovisioner = \"ad\"\ngroup = \"{group}\"\n"
        ),
        vec![("LDAP_PASSWORD", ADMIN_PASSWORD.to_string())],
    )
}

fn template() -> String {
    format!("user-dn = \"uid={{subject}},{PEOPLE}\"")
}

fn tls_of(slapd: &Slapd) -> &jitgate_tests::slapd::Tls {
    slapd.tls.as_ref().expect("a TLS slapd")
}

fn toml_path(p: &std::path::Path) -> String {
    p.display().to_string().replace('\\', "\\\\")
}

/// Activation adds the member and the end removes it, over `url` with the
/// extra `keys` (TLS settings).
fn granted_and_removed_over(b: Backend, slapd: &Slapd, url: &str, keys: &str, subject: &str) {
    let setup = directory_setup(
        b,
        url,
        GROUP,
        &format!("{}\n{keys}\nreconcile-interval = 0", template()),
    );
    let s = setup.start();
    let id = request(&s, &format!("tls-{subject}"), subject, 600)["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_state(&s, &id, "active");
    assert!(
        slapd.members(GROUP).contains(&dn(subject)),
        "active, yet not a member: {:?}",
        slapd.members(GROUP)
    );
    revoke_and_wait(&s, &id);
    assert!(
        !slapd.members(GROUP).contains(&dn(subject)),
        "revoked, yet still a member: {:?}",
        slapd.members(GROUP)
    );
}

/// slapd refuses every operation not over TLS (`security tls=1`), so
/// these pass only if the provisioner really spoke TLS and trusted the
/// test's CA through `ca-file`.
fn ldaps_member_added_and_removed_with_a_private_ca(b: Backend) {
    let slapd = Slapd::start_tls();
    let tls = tls_of(&slapd);
    let keys = format!("ca-file = \"{}\"", toml_path(&tls.ca_file));
    granted_and_removed_over(b, &slapd, &tls.ldaps_url, &keys, "alice");
}

fn starttls_member_added_and_removed_with_a_private_ca(b: Backend) {
    let slapd = Slapd::start_tls();
    let keys = format!(
        "starttls = true\nca-file = \"{}\"",
        toml_path(&tls_of(&slapd).ca_file)
    );
    granted_and_removed_over(b, &slapd, &slapd.url, &keys, "bob");
}

/// A server certificate from a CA the provisioner does not trust is
/// refused, over ldaps:// and over StartTLS: the apply fails, and since
/// nothing can be read back from a server that is not trusted, the grant
/// waits in `deprovisioning` (alarmed) with nothing applied. Once the
/// operator trusts the right CA (and restarts), removal is read back and
/// the grant ends `failed`. A plain ldap:// bind to the TLS-only server is
/// refused too: what proves the TLS tests above really spoke TLS.
fn a_directory_certificate_from_an_unknown_ca_is_refused(b: Backend) {
    let slapd = Slapd::start_tls();
    let tls = tls_of(&slapd);
    let before = slapd.members(GROUP);
    for (url, keys, subject) in [
        (tls.ldaps_url.as_str(), "", "mallory"),
        (slapd.url.as_str(), "starttls = true\n", "oscar"),
        (slapd.url.as_str(), "", "trudy"),
    ] {
        let trusted = tempfile::NamedTempFile::new().expect("tempfile");
        let _ = make_ca(trusted.path());
        let toml = format!(
            "{}\n{keys}ca-file = \"{}\"\nmax-attempts = 2\nreconcile-interval = 0",
            template(),
            toml_path(trusted.path())
        );
        let setup = directory_setup(b, url, GROUP, &toml);
        let s = setup.start();
        let id = request(&s, &format!("ca-{subject}"), subject, 600)["id"]
            .as_str()
            .expect("id")
            .to_string();
        let g = wait_state(&s, &id, "deprovisioning");
        let why = g["end-reason"].as_str().unwrap_or_default().to_lowercase();
        let plain = keys.is_empty() && url.starts_with("ldap://");
        let expected = if plain {
            "confidentiality"
        } else {
            "certificate"
        };
        assert!(why.contains(expected), "{url} {keys}: {g}");
        assert!(
            g["provisioning"]["applied-at"].is_null(),
            "never active: {g}"
        );
        let alarmed = wait_for(WAIT, || {
            metrics(&s)
                .contains("jitgate_deprovisioning_alarm 1")
                .then_some(())
        });
        assert!(alarmed.is_some(), "no alarm: {}", metrics(&s));
        assert_eq!(slapd.members(GROUP), before, "{url}: something applied");
        if plain {
            continue;
        }
        s.kill();
        std::fs::copy(&tls.ca_file, trusted.path()).expect("trust the right CA");
        let s = setup.start();
        wait_state(&s, &id, "failed");
        assert_eq!(slapd.members(GROUP), before, "{url}: something applied");
    }
}

/// `user-search-base` + `user-filter`: the user is found by the filter,
/// the subject filter-escaped (RFC 4515), so a subject holding filter
/// syntax matches only a user of exactly that name, never another.
fn ldap_user_filter_finds_the_user_and_escapes_the_subject(b: Backend) {
    let slapd = Slapd::start();
    let alice = slapd.add_user("alice").to_lowercase();
    slapd.add_user("bob");
    // A real uid holding the filter's special characters.
    let odd = slapd.add_user("o*brien(x)").to_lowercase();
    let setup = directory_setup(
        b,
        &slapd.url,
        GROUP,
        &format!(
            "user-search-base = \"{PEOPLE}\"\n\
             user-filter = \"(&(objectClass=inetOrgPerson)(uid={{subject}}))\"\n\
             max-attempts = 2\nreconcile-interval = 0"
        ),
    );
    let s = setup.start();
    let a = request(&s, "f-alice", "alice", 3)["id"]
        .as_str()
        .expect("id")
        .to_string();
    let o = request(&s, "f-odd", "o*brien(x)", 600)["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_state(&s, &a, "active");
    wait_state(&s, &o, "active");
    let members = slapd.members(GROUP);
    assert!(
        members.contains(&alice) && members.contains(&odd),
        "{members:?}"
    );
    // Unescaped, each would name alice (or several users) instead.
    for (i, attack) in ["*)(uid=alice", "ali*", "*)(uid=*", "*"].iter().enumerate() {
        let id = request(&s, &format!("f-attack{i}"), attack, 600)["id"]
            .as_str()
            .expect("id")
            .to_string();
        let g = wait_state(&s, &id, "failed");
        assert!(
            g["end-reason"]
                .as_str()
                .unwrap_or_default()
                .contains("no directory user"),
            "{attack}: {g}"
        );
    }
    let allowed = [ADMIN_DN.to_lowercase(), alice.clone(), odd.clone()];
    assert!(
        slapd.members(GROUP).iter().all(|m| allowed.contains(m)),
        "the attacks changed the group: {:?}",
        slapd.members(GROUP)
    );
    // Removal finds the user by the same filter.
    wait_state(&s, &a, "expired");
    revoke_and_wait(&s, &o);
    assert_eq!(slapd.members(GROUP), vec![ADMIN_DN.to_lowercase()]);
}

/// `member-attribute = "uniqueMember"` on a `groupOfUniqueNames`: the
/// grant is applied, read back, reconciled and removed there (and never
/// in `member`).
fn ldap_unique_member_group_granted_reconciled_and_removed(b: Backend) {
    let slapd = Slapd::start();
    let group = slapd.add_unique_group("Auditors");
    let setup = directory_setup(
        b,
        &slapd.url,
        &group,
        &format!(
            "{}\nmember-attribute = \"uniqueMember\"\nreconcile-interval = 1",
            template()
        ),
    );
    let s = setup.start();
    let id = request(&s, "uniq", "alice", 600)["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_state(&s, &id, "active");
    let unique = |g: &str| slapd.values(g, "uniqueMember");
    assert!(
        unique(&group).contains(&dn("alice")),
        "{:?}",
        unique(&group)
    );
    assert!(slapd.members(&group).is_empty(), "written to `member`");
    slapd.add_value(&group, "uniqueMember", &dn("mallory"));
    let cleaned = wait_for(WAIT, || {
        let u = unique(&group);
        (!u.contains(&dn("mallory")) && u.contains(&dn("alice"))).then_some(())
    });
    assert!(cleaned.is_some(), "not reconciled: {:?}", unique(&group));
    revoke_and_wait(&s, &id);
    assert_eq!(
        unique(&group),
        vec![ADMIN_DN.to_lowercase()],
        "left behind, or the placeholder removed"
    );
}

both_stores!(
    ldaps_member_added_and_removed_with_a_private_ca,
    starttls_member_added_and_removed_with_a_private_ca,
    a_directory_certificate_from_an_unknown_ca_is_refused,
    ldap_user_filter_finds_the_user_and_escapes_the_subject,
    ldap_unique_member_group_granted_reconciled_and_removed,
);
