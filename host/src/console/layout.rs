//! The frame every console page shares: head, navigation by role, the
//! flash message, and small pieces (times, countdowns, forms with their
//! CSRF field) that several pages render the same way.

use maud::{DOCTYPE, Markup, html};

use super::Session;
use crate::grant::Millis;
use crate::service::Role;

/// A page with the navigation the signed-in person's roles allow.
pub fn page(title: &str, s: &Session, current: &str, body: Markup) -> Markup {
    let roles = &s.principal.roles;
    let has = |r: Role| roles.contains(&r);
    let mut nav: Vec<(&str, &str)> = Vec::new();
    if has(Role::Approver) {
        nav.push(("/console/approvals", "Approvals"));
    }
    if has(Role::Requester) || has(Role::Pipeline) || roles.is_empty() {
        nav.push(("/console/requests", "My requests"));
    }
    if has(Role::Auditor) || has(Role::Admin) {
        nav.push(("/console/audit", "Audit"));
        nav.push(("/console/reviews", "Break-glass reviews"));
        nav.push(("/console/access-review", "Access review"));
    }
    if has(Role::Admin) {
        nav.push(("/console/admin", "Admin"));
    }
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                header.top {
                    a.brand href="/console/" { "jitgate" }
                    nav aria-label="Console" {
                        ul {
                            @for (href, label) in &nav {
                                li {
                                    @if *href == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.signout method="post" action="/console/sign-out" {
                        (csrf_field(s))
                        span.who { (s.principal.name) }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @if let Some(f) = &s.flash {
                        p class={ "flash " (f.kind) } role=(if f.kind == "error" { "alert" } else { "status" }) { (f.text) }
                    }
                    (body)
                }
            }
        }
    }
}

/// The `<head>` of every page: the embedded stylesheet and icon, and the
/// one script where a page has countdowns.
fn head(title: &str, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · jitgate" }
            link rel="stylesheet" href="/console/assets/console.css";
            link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml";
            @if script { script src="/console/assets/console.js" defer {} }
        }
    }
}

/// A page for someone not signed in (sign-in, refusals).
pub fn bare_page(title: &str, text: &str) -> Markup {
    bare(
        title,
        html! {
            p role="alert" { (text) }
            p { a href="/console/" { "Back to the console" } }
        },
    )
}

/// The frame without navigation.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body {
                header.top { a.brand href="/console/" { "jitgate" } }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field every state-changing form carries.
pub fn csrf_field(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// A time as RFC 3339 UTC with milliseconds, in a `<time>` element.
pub fn time(ms: Millis) -> Markup {
    let t = crate::timefmt::rfc3339_ms(ms);
    html! { time datetime=(t) { (t) } }
}

/// An optional time, or a dash.
pub fn maybe_time(ms: Option<Millis>) -> Markup {
    match ms {
        Some(ms) => time(ms),
        None => html! { "—" },
    }
}

/// The time left until `until`, counted down in the browser by
/// console.js (the server's figure stands when scripts are off).
pub fn countdown(now: Millis, until: Millis) -> Markup {
    let t = crate::timefmt::rfc3339_ms(until);
    html! {
        time.countdown datetime=(t) data-until=(until) { (duration((until - now).max(0))) " left" }
    }
}

/// `1 h 05 min`, `4 min 10 s`, `12 s`.
pub fn duration(ms: i64) -> String {
    let s = ms / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {sec:02} s")
    } else {
        format!("{sec} s")
    }
}

/// Seconds as a TTL (`3600 s (1 h 00 min)`).
pub fn ttl(secs: u32) -> String {
    format!("{secs} s ({})", duration(secs as i64 * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(3_900_000), "1 h 05 min");
        assert_eq!(duration(250_000), "4 min 10 s");
        assert_eq!(duration(12_000), "12 s");
        assert_eq!(ttl(3600), "3600 s (1 h 00 min)");
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let m = bare_page("x", "<script>alert(1)</script>").into_string();
        assert!(!m.contains("<script>alert"), "{m}");
        assert!(m.contains("&lt;script&gt;"));
    }
}
